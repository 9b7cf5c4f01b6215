"""The agent configuration as typed Structs: sections, keys and defaults.

Keys and defaults follow the Rust Oxydra's `agent.toml` (docs/config.md lists them), so an
existing file loads unchanged. Every Struct forbids unknown fields; the loader turns the
rejection into an error that suggests the nearest known key. Range checks sit in
`msgspec.Meta` so a bad value names its key; cross-field rules are in `validate.py`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from oxydra.core.tiers import ImpactClass, SafetyTier

MAX_INT = 2**53 - 1
"""The largest integer a setting may hold: exact in JSON and in every store we write to."""
Positive = Annotated[int, msgspec.Meta(gt=0, le=MAX_INT)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
Ratio = Annotated[float, msgspec.Meta(ge=0, le=1)]

ProviderType = Literal["openai", "anthropic", "gemini", "openai_responses"]
SchemaDialect = Literal["full", "compact"]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every config section: unknown keys are errors."""


class Selection(_Section):
    """Which registry entry and model answer by default."""

    provider: str = "openai"
    model: str = "gpt-4o-mini"


class ContextBudget(_Section):
    """How much of the model's window a turn may fill before older history is summarised."""

    trigger_ratio: Ratio = 0.85
    safety_buffer_tokens: Positive = 1024
    fallback_max_context_tokens: Positive = 128_000


class Summarization(_Section):
    """Rolling summary of older history."""

    target_ratio: Ratio = 0.5
    min_turns: Positive = 6


class RuntimeConfig(_Section):
    """Limits of one turn.

    `max_cost` is the Rust version's key and counted tokens: it is read as a deprecated alias
    of `max_tokens`. Money is limited by `max_cost_usd`.
    """

    turn_timeout_secs: Positive = 60
    turn_deadline_secs: Positive | None = None
    max_turns: Positive = 100
    max_cost: PositiveFloat | None = None
    max_tokens: Positive | None = None
    max_cost_usd: PositiveFloat | None = None
    max_repeated_tool_calls: Positive = 3
    max_tool_retries: Positive = 3
    max_output_tokens: Positive | None = None
    system_prompt: str | None = None
    max_subagents_per_turn: Positive = 8
    """Delegations one turn may start (fan-out limit; background ones included)."""
    context_budget: ContextBudget = msgspec.field(default_factory=ContextBudget)
    summarization: Summarization = msgspec.field(default_factory=Summarization)


class GatewayConfig(_Section):
    """The WebSocket gateway inside `vm`, and the chat page on its port (`web`).

    The page is served on a loopback bind; on any other address only with
    `web_insecure_http = true` (the gateway speaks plain HTTP: put TLS in front of it).
    """

    bind: str = "127.0.0.1:0"
    auth_token: str | None = None
    allowed_origins: list[str] = []
    web: bool = True
    web_insecure_http: bool = False
    max_sessions_per_user: Positive = 50
    max_concurrent_turns_per_user: Positive = 10
    session_idle_ttl_hours: PositiveFloat = 48
    max_concurrent_turns: Positive = 32
    """Turns running at once in this `vm`, all people together; shared round robin."""
    max_queued_turns_per_user: Positive = 50
    """Turns of one person waiting in their sessions' lanes; one more is refused."""


class RetrievalConfig(_Section):
    """Hybrid retrieval: candidates per modality and fusion weights (must sum to 1)."""

    top_k: Positive = 8
    vector_weight: Ratio = 0.7
    fts_weight: Ratio = 0.3


class MemoryConfig(_Section):
    """The memory store and its embeddings.

    `backend = "sqlite"` (one host, the file at `db_path`) or `"postgres"`: several `vm`
    hosts share the database at `postgres_url` (docs/postgres.md). The URL carries no
    password; it is read from the environment variable `postgres_password_env` (or libpq's
    own PGPASSWORD / ~/.pgpass).
    """

    enabled: bool = False
    backend: Literal["sqlite", "postgres"] = "sqlite"
    postgres_url: str | None = None
    postgres_password_env: str = "OXYDRA_POSTGRES_PASSWORD"
    db_path: str | None = None
    remote_url: str | None = None
    auth_token: str | None = None
    embedding_backend: Literal["fastembed", "model2vec", "deterministic"] = "fastembed"
    model2vec_model: Literal["potion_32m", "potion_8m"] = "potion_32m"
    embedding_model_path: str | None = None
    retrieval: RetrievalConfig = msgspec.field(default_factory=RetrievalConfig)


class ReliabilityConfig(_Section):
    """Retries of one provider call, then the fallback chain.

    `fallbacks` lists registry entries to try next, as `name` or `name/model`.
    """

    max_attempts: Positive = 3
    backoff_base_ms: Positive = 250
    backoff_max_ms: Positive = 2000
    jitter: bool = False
    fallbacks: list[str] = []


class CatalogConfig(_Section):
    """The model catalog (models.dev schema)."""

    skip_catalog_validation: bool = False
    pinned_url: str | None = None
    url: str = "https://models.dev/api.json"


class ShellConfig(_Section):
    """Shell tool policy. Parsing is a guard rail; confinement comes from the sandbox tier."""

    enabled: bool = True
    allow: list[str] = msgspec.field(default_factory=lambda: ["*"])
    deny: list[str] = []
    replace_defaults: bool = False
    allow_operators: bool = True
    env_keys: list[str] = []
    command_timeout_secs: Positive = 60
    allow_unconfined: bool = False


class BrowserConfig(_Section):
    """Browser automation through a CDP endpoint."""

    enabled: bool = True
    cdp_url: str | None = None


class WebSearchConfig(_Section):
    """`web_search` backends."""

    provider: Literal["duckduckgo", "google", "searxng"] = "duckduckgo"
    base_url: str | None = None
    base_urls: str | None = None
    api_key_env: str | None = None
    engine_id_env: str | None = None
    query_params: str | None = None
    engines: str | None = None
    categories: str | None = None
    safesearch: Annotated[int, msgspec.Meta(ge=0, le=2)] | None = None
    egress_allowlist: list[str] = []


class AttachmentSaveConfig(_Section):
    """`attachment_save` tool."""

    timeout_secs: Positive = 60


class ApprovalConfig(_Section):
    """Which safety tiers need a human's yes; `default` decides when no human is wired."""

    require: list[SafetyTier] = []
    default: Literal["allow", "deny"] = "deny"
    timeout_secs: Positive = 300


class ToolsConfig(_Section):
    """Per-tool settings."""

    shell: ShellConfig = msgspec.field(default_factory=ShellConfig)
    browser: BrowserConfig = msgspec.field(default_factory=BrowserConfig)
    web_search: WebSearchConfig | None = None
    attachment_save: AttachmentSaveConfig = msgspec.field(default_factory=AttachmentSaveConfig)
    approval: ApprovalConfig = msgspec.field(default_factory=ApprovalConfig)
    output_limit_bytes: Positive = 16 * 1024
    # Where file tool bodies run: "wasm" (WASI guest, docs/wasm.md), "process" (in-process
    # jail), or "auto" (the guest when the wasm extra is installed, else the jail + a warning).
    isolation: Literal["auto", "wasm", "process"] = "auto"


TaintAction = Literal["approve", "deny", "allow"]
INSTRUCTION_FILES = ["SYSTEM.md", "SOUL.md", "AGENTS.md", "TOOLS.md", "IDENTITY.md", "SKILL.md"]


class TaintConfig(_Section):
    """`[security.taint]`: what untrusted content in the model's context may still drive.

    `mode` is the action for gated calls: `approve` asks the person (refused when nobody
    can be asked), `deny` refuses, `off` disables gating (labels are still kept).
    `gate` lists the impact classes gated while tainted; `tools` overrides the action per
    tool; `impact` overrides a tool's impact class; writes to a file whose name is in
    `instruction_files` (or under a `skills/` folder) count as `external_effect`.
    """

    mode: Literal["approve", "deny", "off"] = "approve"
    gate: list[ImpactClass] = msgspec.field(default_factory=lambda: [ImpactClass.EXTERNAL_EFFECT])
    tools: dict[str, TaintAction] = {}
    impact: dict[str, ImpactClass] = {}
    instruction_files: list[str] = msgspec.field(default_factory=lambda: list(INSTRUCTION_FILES))
    egress_max_query_value_chars: Positive = 64


class SecurityConfig(_Section):
    """`[security]`: policies that cut across tools."""

    taint: TaintConfig = msgspec.field(default_factory=TaintConfig)


class SchedulerConfig(_Section):
    """Durable scheduled turns."""

    enabled: bool = False
    poll_interval_secs: Positive = 15
    max_concurrent: Positive = 2
    max_schedules_per_user: Positive = 50
    max_turns: Positive = 10
    max_cost: PositiveFloat = 0.50
    max_run_history: Positive = 20
    min_interval_secs: Positive = 60
    default_timezone: str = "Asia/Kolkata"
    auto_disable_after_failures: Positive = 5
    notify_after_failures: Annotated[int, msgspec.Meta(ge=0)] = 3
    run_timeout_secs: Positive = 600
    # A run cut short by a crash or restart: run it again once at start-up when its stored
    # events show no side-effecting tool call ("retry_if_clean"), or leave it ("skip").
    on_interrupted: Literal["retry_if_clean", "skip"] = "retry_if_clean"
    # Hosts sharing a PostgreSQL store: how long a claimed run's lease lasts without renewal
    # (renewed every poll); a dead host's run is taken over once it expires. At least three
    # poll intervals are used.
    run_lease_secs: Positive = 60


class AgentSelection(_Section):
    """A named agent's own provider and model."""

    provider: str
    model: str


class AgentDefinition(_Section):
    """A specialist agent that `delegate_to_agent` can hand work to."""

    system_prompt: str | None = None
    system_prompt_file: str | None = None
    soul_file: str | None = None
    tools: list[str] | None = None
    max_turns: Positive | None = None
    max_cost: PositiveFloat | None = None
    max_secs: PositiveFloat | None = None
    """Wall-clock budget of one delegation to this agent (a brief may only tighten it)."""
    selection: AgentSelection | None = None


class ProviderEntry(_Section):
    """One entry of `[providers.registry.<name>]`.

    `base_url` is the API root (`http://localhost:11434`); a base that already ends in the
    version segment (`.../v1`) is accepted as OpenAI-SDK users write it. `schema_dialect`
    picks how tool schemas are sent: `full` JSON Schema, or `compact` without validation
    keywords (`maxLength`, `pattern`, `minimum`...) that some servers' grammar builders cannot
    take; unset means full for the vendors' own APIs and compact for other OpenAI-compatible
    servers. Arguments are validated against the full schema on our side either way.
    """

    provider_type: ProviderType
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    extra_headers: dict[str, str] = {}
    catalog_provider: str | None = None
    attachment: bool | None = None
    input_modalities: list[str] | None = None
    reasoning: bool | None = None
    max_input_tokens: Positive | None = None
    max_output_tokens: Positive | None = None
    max_context_tokens: Positive | None = None
    timeout_secs: PositiveFloat | None = None
    schema_dialect: SchemaDialect | None = None


# Self-hosted OpenAI-compatible servers at their default addresses. Each runs whatever model
# it loaded, so none needs a key or a catalog entry (`is_local_url`); `base_url` may be
# changed in the entry like any other key.
LOCAL_SERVER_PRESETS = {
    "ollama": "http://127.0.0.1:11434",
    "vllm": "http://127.0.0.1:8000",
    "lmstudio": "http://127.0.0.1:1234",
    "llamacpp": "http://127.0.0.1:8080",
}


def _default_registry() -> dict[str, ProviderEntry]:
    presets = {
        name: ProviderEntry(provider_type="openai", base_url=url, schema_dialect="compact")
        for name, url in LOCAL_SERVER_PRESETS.items()
    }
    return {
        "openai": ProviderEntry(provider_type="openai", api_key_env="OPENAI_API_KEY"),
        "anthropic": ProviderEntry(provider_type="anthropic", api_key_env="ANTHROPIC_API_KEY"),
        **presets,
    }


class ProvidersConfig(_Section):
    """The provider registry; entries merge with (never replace) the defaults: `openai`,
    `anthropic` and the local-server presets (`LOCAL_SERVER_PRESETS`)."""

    registry: dict[str, ProviderEntry] = msgspec.field(default_factory=_default_registry)


class McpServerConfig(_Section):
    """One MCP server: a stdio `command` or an HTTP `url` (docs/mcp.md).

    Values in `env` and `headers` are references — `${VAR}` or `env:VAR` — resolved from the
    environment at start-up; a literal value is accepted but flagged by `mcp check`.
    """

    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    read_paths: list[str] = []
    url: str | None = None
    transport: Literal["auto", "stdio", "streamable_http", "sse"] = "auto"
    headers: dict[str, str] = {}
    enabled: bool = True
    tools: list[str] | None = None
    exclude_tools: list[str] = []
    safety_tier: SafetyTier = SafetyTier.SIDE_EFFECTING
    tool_tiers: dict[str, SafetyTier] = {}
    trust_read_only_hint: bool = False
    approval: Literal["tier", "always"] = "tier"
    timeout_secs: PositiveFloat = 60.0
    startup_timeout_secs: PositiveFloat = 30.0
    protocol: Literal["auto", "2025-06-18", "2025-11-25", "2026-07-28"] = "auto"


class McpConfig(_Section):
    """`[mcp]`: servers whose tools join the registry, and the prompt budget for them."""

    servers: dict[str, McpServerConfig] = {}
    search_threshold_bytes: Positive = 24 * 1024
    max_schema_bytes: Positive = 16 * 1024
    egress_allowlist: list[str] = []
    allow_unconfined: list[str] = []
    restart_max: Annotated[int, msgspec.Meta(ge=0)] = 5
    restart_backoff_secs: PositiveFloat = 1.0


class ObservabilityConfig(_Section):
    """`[observability]`: traces and metrics out of the guest (docs/observability.md).

    `enabled` turns on OpenTelemetry export (the `otel` extra); the usage ledger, the local
    span store behind `oxydra trace` and the Prometheus endpoint need no extra. `headers`
    maps an HTTP header to the NAME of an environment variable holding its value, so no
    secret sits in a config file. `metrics_bind` empty turns the Prometheus endpoint off; a
    non-loopback bind requires the bearer token from the env variable `metrics_token_env`.
    """

    enabled: bool = False
    otlp_endpoint: str = "http://127.0.0.1:4318"
    protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    headers: dict[str, str] = {}
    service_name: str = "oxydra"
    sample_ratio: Ratio = 1.0
    capture_content: bool = False
    max_attribute_chars: Positive = 4096
    max_queue_spans: Positive = 2048
    export_timeout_secs: PositiveFloat = 5.0
    metrics_interval_secs: PositiveFloat = 30.0
    metrics_bind: str = "127.0.0.1:0"
    metrics_token_env: str = "OXYDRA_METRICS_TOKEN"
    local_turns: Annotated[int, msgspec.Meta(ge=0)] = 200


class SessionsConfig(_Section):
    """Session retention (docs/sessions.md)."""

    retain_days: Positive | None = None
    """Delete archived sessions idle this many days (data and index rows); None keeps all."""


class AgentConfig(_Section):
    """The whole of `agent.toml` (+ `providers.toml`)."""

    config_version: str = "1.0.0"
    selection: Selection = msgspec.field(default_factory=Selection)
    runtime: RuntimeConfig = msgspec.field(default_factory=RuntimeConfig)
    gateway: GatewayConfig = msgspec.field(default_factory=GatewayConfig)
    memory: MemoryConfig = msgspec.field(default_factory=MemoryConfig)
    reliability: ReliabilityConfig = msgspec.field(default_factory=ReliabilityConfig)
    catalog: CatalogConfig = msgspec.field(default_factory=CatalogConfig)
    tools: ToolsConfig = msgspec.field(default_factory=ToolsConfig)
    scheduler: SchedulerConfig = msgspec.field(default_factory=SchedulerConfig)
    security: SecurityConfig = msgspec.field(default_factory=SecurityConfig)
    observability: ObservabilityConfig = msgspec.field(default_factory=ObservabilityConfig)
    agents: dict[str, AgentDefinition] = {}
    providers: ProvidersConfig = msgspec.field(default_factory=ProvidersConfig)
    mcp: McpConfig = msgspec.field(default_factory=McpConfig)
    sessions: SessionsConfig = msgspec.field(default_factory=SessionsConfig)
