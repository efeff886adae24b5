"""The Python SDK's `Client` over MCP 2026-07-28 calling server-everything's
`trigger-sampling-request` through `mcp-auth-gateway wrap`, with a sampling callback.

Usage: GATEWAY_TEST_TOKEN=TOKEN python sampling_2026.py --url URL

It prints ONE JSON line and exits 0 even when the call fails (the Rust test asserts on it):
  {"version": negotiated protocol version, "text": the tool's text, "sampled": [the prompts
   the callback saw], "posts": [[method, carries requestState] for every POST],
   "error": message (only on failure)}
The token is never printed.
"""

import argparse
import asyncio
import json
import os
import sys
import traceback
from typing import Any

import httpx2
import mcp_types as types
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

posts: list[list[Any]] = []


async def on_request(request: httpx2.Request) -> None:
    if request.method != "POST":
        return
    try:
        body = json.loads(request.content)
    except ValueError:
        return
    params = body.get("params") or {}
    posts.append([body.get("method"), "requestState" in params])


async def main(url: str, token: str) -> dict[str, Any]:
    out: dict[str, Any] = {"sampled": [], "posts": posts}

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        out["sampled"].append(params.messages[0].content.text)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="sampled by the Python SDK over MRTR"),
            model="test-model",
        )

    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(15.0, read=30.0),
        trust_env=False,
        event_hooks={"request": [on_request]},
    )
    try:
        async with http:
            client = Client(
                streamable_http_client(url, http_client=http),
                sampling_callback=sampling,
                cache=None,
            )
            async with client:
                out["version"] = client.session.protocol_version
                result = await client.call_tool("trigger-sampling-request", {"prompt": "from python", "maxTokens": 5})
                out["text"] = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
    except BaseException as e:  # noqa: BLE001 - every failure is a result
        out["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exception(e, file=sys.stderr)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.url, os.environ["GATEWAY_TEST_TOKEN"]))))
