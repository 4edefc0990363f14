"""An MCP server (the official Python SDK's FastMCP, streamable HTTP) whose bearer tokens are
keys of admin-api-keys, checked by RFC 7662 introspection on every request, and which
enforces the `mcp` policy the introspection returns: a paused key may do nothing, an
instance or project the policy does not list is refused, `tools/list` shows only the tools
the key may call, and calling any other is refused.

    python server.py --port PORT --introspect URL --introspect-key KEY \
        [--instance ID] [--project ID]

KEY is an admin key holding `keys.introspect` (read from the environment variable
`INTROSPECT_KEY` when the flag is left out, so it stays off the command line). Used by
tests/api/mcp_sdk.rs and by the README's example.
"""

import argparse
import os

import httpx
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations


class KeyToken(AccessToken):
    """An access token carrying the key's MCP policy as introspection returned it."""

    mcp: dict


class IntrospectingVerifier(TokenVerifier):
    """Asks admin-api-keys about each presented key (no caching: a toggle counts at once)."""

    def __init__(self, url: str, key: str):
        self.url = url
        self.key = key

    async def verify_token(self, token: str) -> AccessToken | None:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(
                self.url,
                data={"token": token},
                headers={"Authorization": f"Bearer {self.key}"},
            )
        if answer.status_code != 200:
            return None
        body = answer.json()
        if not body.get("active"):
            return None
        return KeyToken(
            token=token,
            client_id=body["client_id"],
            scopes=body.get("scope", "").split(),
            expires_at=body.get("exp"),
            mcp=body["mcp"],
        )


def covers(patterns: list[str], name: str) -> bool:
    return any(
        name.startswith(p[:-1]) if p.endswith("*") else p == name for p in patterns
    )


class PolicyServer(FastMCP):
    """FastMCP that lists and runs only what the caller's `mcp` policy allows."""

    def __init__(self, instance: str, project: str, **settings):
        super().__init__(**settings)
        self.instance = instance
        self.project = project

    def token(self) -> AccessToken | None:
        """The token of the HTTP request that carried this message. (`get_access_token()`
        reads a context variable that, over streamable HTTP, keeps the token of the request
        that opened the session: a key paused since would still pass.)"""
        request = self.get_context().request_context.request
        user = getattr(request, "user", None)
        return getattr(user, "access_token", None) or get_access_token()

    def refusal(self) -> str | None:
        policy = getattr(self.token(), "mcp", None)
        if policy is None:
            return "no MCP policy for this token"
        if not policy["active"]:
            return "mcp_paused"
        if policy["instance_ids"] and self.instance not in policy["instance_ids"]:
            return "mcp_instance_not_allowed"
        if policy["project_ids"] and self.project not in policy["project_ids"]:
            return "mcp_project_not_allowed"
        return None

    def may_call(self, name: str, read_only: bool) -> bool:
        policy = self.token().mcp
        if policy["allowlist_mode"] == "allowlist" and not covers(policy["tool_allowlist"], name):
            return False
        return read_only or not policy["read_only"]

    async def list_tools(self):
        if self.refusal():
            return []
        return [
            tool
            for tool in await super().list_tools()
            if self.may_call(tool.name, bool(tool.annotations and tool.annotations.readOnlyHint))
        ]

    async def call_tool(self, name, arguments):
        refused = self.refusal()
        if refused:
            raise ToolError(refused)
        tool = self._tool_manager.get_tool(name)
        read_only = bool(tool and tool.annotations and tool.annotations.readOnlyHint)
        if tool is not None and not self.may_call(name, read_only):
            raise ToolError("mcp_read_only" if self.may_call(name, True) else "mcp_tool_not_allowed")
        return await super().call_tool(name, arguments)


def build(port: int, introspect: str, key: str, instance: str, project: str) -> PolicyServer:
    base = f"http://127.0.0.1:{port}"
    server = PolicyServer(
        instance,
        project,
        name="notes",
        host="127.0.0.1",
        port=port,
        token_verifier=IntrospectingVerifier(introspect, key),
        auth=AuthSettings(issuer_url=introspect.rsplit("/", 1)[0], resource_server_url=base),
    )
    notes: list[str] = ["first note"]

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def search_notes(text: str = "") -> str:
        """Notes containing `text`."""
        return "\n".join(n for n in notes if text in n)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False))
    def add_note(text: str) -> str:
        """Adds a note."""
        notes.append(text)
        return f"{len(notes)} notes"

    return server


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--introspect", required=True)
    parser.add_argument("--introspect-key", default=os.environ.get("INTROSPECT_KEY"))
    parser.add_argument("--instance", default="notes")
    parser.add_argument("--project", default="")
    args = parser.parse_args()
    build(args.port, args.introspect, args.introspect_key, args.instance, args.project).run(
        transport="streamable-http"
    )
