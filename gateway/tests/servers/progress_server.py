"""A Streamable HTTP MCP server of the Python SDK (`mcp`, from tests/interop/clients/
requirements.txt), for mcp-auth-gateway's `proxy` tests (gateway/tests/proxy.rs).

    python progress_server.py

Binds 127.0.0.1 on a free port, prints `PORT <n>` on stdout, and serves MCP at /mcp with one
tool, `count`, that reports progress `1..steps` (one notification per step) and then answers
`counted <steps>`. Runs until killed.
"""

import socket
import sys

import anyio
import uvicorn

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("gateway-proxy-test")


@server.tool()
async def count(steps: int, ctx: Context) -> str:
    """Reports progress 1..steps, then answers."""
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps, f"step {i}")
    return f"counted {steps}"


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before the port is printed: connections queue until uvicorn accepts them.
    sock.listen(128)
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning")
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    sys.exit(anyio.run(main))
