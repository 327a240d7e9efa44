"""Process settings from the environment (or a ``.env`` file).

Secrets live here and only here: YAML files edited by the PR team never hold a
token, and ``SecretStr`` keeps them out of reprs and logs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MONITOR_", env_file=".env", extra="ignore")

    db_url: str = Field(default="sqlite:///monitor.db", description="SQLAlchemy URL of the store")
    rules_dir: Path = Field(default=Path("rules"))
    escalation_file: Path = Field(default=Path("escalation.yaml"))
    timezone: str = Field(default="Europe/Brussels", description="IANA zone for schedules and hours")
    sentiment_model: str = Field(
        default="default",
        description="'default' for the bundled offline model, or a Hugging Face model id / local path",
    )
    languages: list[str] = Field(default_factory=lambda: ["nl", "fr", "en"])
    feed: Path | None = Field(default=None, description="JSONL file replayed as a source")
    feed_batch: int = Field(default=50, ge=1, description="Lines per poll when replaying a feed")
    poll_seconds: float = Field(default=60, ge=0.05, description="Default poll interval (monitor.yaml sets its own)")
    pass_seconds: float = Field(default=15, ge=0.05, description="How often stored mentions go through the pipeline")
    batch_size: int = Field(default=256, ge=1)
    log_level: str = "INFO"
    slack_channel: str | None = Field(default=None, description="Default Slack channel for levels naming people only")
    slack_api_url: str | None = Field(default=None, description="Slack Web API base URL (tests, proxies)")

    # Secrets: environment only (names without the MONITOR_ prefix are the vendors' usual ones).
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    x_bearer_token: SecretStr | None = Field(default=None, validation_alias="X_BEARER_TOKEN")
