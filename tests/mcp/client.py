"""Drives an MCP server with the official Python SDK's client over streamable HTTP, as one
key: prints one JSON line per round, `{"tools": [names listed], "calls": {name: "ok" or the
refusal}}`, calling each tool named on the command line. With `--rounds N`, waits for a line
on stdin between rounds (the test changes the key meanwhile), in the same session.

    python client.py URL KEY TOOL... [--rounds N]
"""

import argparse
import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def round_of(session: ClientSession, tools: list[str]) -> dict:
    listed = [tool.name for tool in (await session.list_tools()).tools]
    calls = {}
    for name in tools:
        result = await session.call_tool(name, {"text": "note"})
        text = " ".join(c.text for c in result.content if getattr(c, "text", None))
        calls[name] = text if result.isError else "ok"
    return {"tools": sorted(listed), "calls": calls}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("tools", nargs="*")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"}
    async with streamablehttp_client(args.url, headers=headers) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for n in range(args.rounds):
                if n > 0:
                    await asyncio.to_thread(sys.stdin.readline)
                print(json.dumps(await round_of(session, args.tools)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
