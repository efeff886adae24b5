"""The Python SDK's `Client` over MCP 2026-07-28 listening through `mcp-auth-gateway wrap`
(`subscriptions/listen`) to the stub server (`tests/servers/stub.mjs --subscribe`), whose
`notify` tool makes it send a tools list change and a resource update.

Usage: GATEWAY_TEST_TOKEN=TOKEN python listen_2026.py --url URL

It prints ONE JSON line and exits 0 even when something fails (the Rust test asserts on it):
  {"version": negotiated protocol version, "honored": the acknowledged filter,
   "events": [the events received, as strings], "error": message (only on failure)}
The token is never printed.
"""

import argparse
import asyncio
import json
import os
import sys
import traceback
from typing import Any

import anyio
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ResourceUpdated, ToolsListChanged


async def main(url: str, token: str) -> dict[str, Any]:
    out: dict[str, Any] = {"events": []}
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(15.0, read=30.0),
        trust_env=False,
    )
    try:
        async with http:
            client = Client(streamable_http_client(url, http_client=http), cache=None)
            async with client:
                out["version"] = client.session.protocol_version
                async with client.listen(tools_list_changed=True, resource_subscriptions=["test://a"]) as sub:
                    out["honored"] = sub.honored.model_dump(by_alias=True, exclude_none=True)
                    notes = [
                        {"method": "notifications/resources/updated", "params": {"uri": "test://b"}},
                        {"method": "notifications/tools/list_changed"},
                        {"method": "notifications/resources/updated", "params": {"uri": "test://a"}},
                    ]
                    await client.call_tool("notify", {"notifications": notes})
                    with anyio.fail_after(30):
                        async for event in sub:
                            if isinstance(event, ToolsListChanged):
                                out["events"].append("tools")
                            elif isinstance(event, ResourceUpdated):
                                out["events"].append(f"updated {event.uri}")
                            else:
                                out["events"].append(type(event).__name__)
                            if len(out["events"]) == 2:
                                break
    except BaseException as e:  # noqa: BLE001 - every failure is a result
        out["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exception(e, file=sys.stderr)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.url, os.environ["GATEWAY_TEST_TOKEN"]))))
