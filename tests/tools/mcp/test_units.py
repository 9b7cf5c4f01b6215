"""Names, external schemas, result rendering and the `mcpServers` import."""

from __future__ import annotations

import base64
import re
import tomllib

import msgspec
import pytest

from oxydra.config.schema import McpConfig
from oxydra.core.errors import ConfigError, ToolError
from oxydra.tools.mcp import checked_schema, import_mcp_servers, render_result, tool_name

PROVIDER_SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class TestNames:
    @pytest.mark.parametrize(
        ("server", "tool"),
        [("time", "get_current_time"), ("fs", "read.file"), ("x", "a" * 200),
         ("9lives", "t"), ("s", "名前"), ("s", "a/b c")],
    )  # fmt: skip
    def test_every_name_fits_every_providers_rules(self, server: str, tool: str) -> None:
        assert PROVIDER_SAFE.match(tool_name(server, tool))

    def test_plain_names_are_kept(self) -> None:
        assert tool_name("time", "get_current_time") == "time__get_current_time"

    def test_names_that_collapse_stay_distinct(self) -> None:
        assert tool_name("s", "a.b") != tool_name("s", "a_b")
        assert tool_name("s", "a" * 100 + "1") != tool_name("s", "a" * 100 + "2")

    def test_names_are_stable(self) -> None:
        assert tool_name("s", "x.y") == tool_name("s", "x.y")


class TestSchema:
    def test_a_valid_schema_passes_with_refs_inlined(self) -> None:
        schema = {
            "type": "object",
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "properties": {"p": {"$ref": "#/$defs/P"}},
            "$defs": {"P": {"type": "string", "title": "P"}},
        }
        checked, problems = checked_schema(schema, max_bytes=10_000)
        assert problems == [] and checked is not None
        assert checked["properties"]["p"] == {"type": "string"} and "$schema" not in checked

    @pytest.mark.parametrize(
        ("schema", "problem"),
        [
            ("nope", "not a JSON object"),
            ({"type": "array"}, "must be a JSON object schema"),
            ({"type": "object", "properties": []}, "properties must be an object"),
            ({"type": "object", "properties": {"a": {"type": "strung"}}}, "not a JSON Schema type"),
            ({"type": "object", "required": "a"}, "required must be a list"),
            ({"type": "object", "anyOf": {}}, "anyOf must be a list"),
            ({"type": "object", "properties": {"a": {"$ref": "http://evil/x"}}}, "local"),
            ({"type": "object", "properties": {"a": 5}}, "must be a schema object"),
            ({"type": "object", "description": "x" * 5000}, "bytes (limit"),
        ],
    )
    def test_bad_schemas_are_refused_with_a_reason(self, schema: object, problem: str) -> None:
        checked, problems = checked_schema(schema, max_bytes=4096)
        assert checked is None and problem in " ".join(problems)

    def test_a_deep_schema_is_refused(self) -> None:
        node: dict = {"type": "object"}
        for _ in range(40):
            node = {"type": "object", "properties": {"n": node}}
        assert checked_schema(node, max_bytes=1 << 20)[0] is None


class TestRender:
    def test_text_is_cut_with_a_marker(self) -> None:
        text = render_result({"content": [{"type": "text", "text": "y" * 1000}]}, "s", 100).text
        assert text.startswith("y" * 100) and "cut at 100 characters of 1000" in text

    def test_an_error_result_raises_a_tool_error(self) -> None:
        with pytest.raises(ToolError, match="reported an error: bad"):
            render_result({"content": [{"type": "text", "text": "bad"}], "isError": True}, "s", 99)

    def test_input_required_is_refused(self) -> None:
        with pytest.raises(ToolError, match="asked for more input"):
            render_result({"resultType": "input_required"}, "s", 99)

    def test_empty_content_says_so(self) -> None:
        assert render_result({"content": []}, "s", 99).text == "(the tool returned no content)"

    def test_images_are_attached_and_named_in_the_text(self) -> None:
        png = base64.b64encode(b"\x89PNG-image").decode()
        block = {"type": "image", "mimeType": "image/png", "data": png}
        output = render_result({"content": [block] * 6}, "s", 10_000)
        assert [m.data for m in output.media] == [b"\x89PNG-image"] * 4
        assert output.text.count("image/png image from MCP server s") == 4
        assert "2 more images dropped" in output.text


DESKTOP = b"""{
  "mcpServers": {
    "time": {"command": "uvx", "args": ["mcp-server-time"]},
    "github": {"command": "npx", "args": ["-y", "@x/gh"], "env": {"GITHUB_TOKEN": "ghp_x"}},
    "remote": {"url": "https://mcp.example.com/mcp", "type": "http",
               "headers": {"Authorization": "Bearer s3cret"}},
    "old.sse": {"url": "https://x.example/sse", "type": "sse", "disabled": true},
    "ref": {"command": "srv", "env": {"K": "${ALREADY}"}}
  }
}"""


class TestImport:
    def test_the_desktop_shape_becomes_config_that_loads(self) -> None:
        text, _ = import_mcp_servers(DESKTOP, "claude.json")
        config = msgspec.convert(tomllib.loads(text)["mcp"], McpConfig)
        servers = config.servers
        assert servers["time"].command == "uvx" and servers["time"].args == ["mcp-server-time"]
        assert servers["remote"].transport == "streamable_http"
        assert servers["old_sse"].transport == "sse" and servers["old_sse"].enabled is False
        assert servers["ref"].env == {"K": "${ALREADY}"}

    def test_secrets_are_never_copied(self) -> None:
        text, notes = import_mcp_servers(DESKTOP, "claude.json")
        assert "ghp_x" not in text and "s3cret" not in text
        assert 'GITHUB_TOKEN = "${GITHUB_TOKEN}"' in text
        assert "${MCP_REMOTE_AUTHORIZATION}" in text
        assert any("set GITHUB_TOKEN" in n for n in notes)
        assert any("'old.sse' is named 'old_sse'" in n for n in notes)

    @pytest.mark.parametrize(
        ("data", "problem"),
        [
            (b"{nope", "not valid JSON"),
            (b"[]", "expected an object"),
            (b'{"mcpServers": {"a": 1}}', "mcpServers.a must be an object"),
            (b'{"mcpServers": {"a": {}}}', "needs 'command'"),
            (b'{"mcpServers": {"a": {"command": "x", "args": [1]}}}', "args must be a list"),
            (b'{"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}', "env.K must be"),
        ],
    )
    def test_bad_files_name_the_file_and_key(self, data: bytes, problem: str) -> None:
        with pytest.raises(ConfigError, match=r"f\.json") as info:
            import_mcp_servers(data, "f.json")
        assert problem in str(info.value)


class TestSecrets:
    def test_referenced_env_and_header_values_are_known_secrets(self) -> None:
        from oxydra.config.schema import AgentConfig, McpServerConfig
        from oxydra.tools import known_secrets

        config = AgentConfig(
            mcp=McpConfig(
                servers={
                    "gh": McpServerConfig(
                        command="x", env={"T": "${GH_TOKEN}", "MODE": "fast-mode-1"}
                    ),
                    "web": McpServerConfig(url="https://x", headers={"A": "env:WEB_AUTH"}),
                }
            )
        )
        environ = {"GH_TOKEN": "ghp_abcdefgh123", "WEB_AUTH": "Bearer zzzzzzzz"}
        secrets = known_secrets(config, environ)
        assert "ghp_abcdefgh123" in secrets and "Bearer zzzzzzzz" in secrets
        assert "fast-mode-1" not in secrets
