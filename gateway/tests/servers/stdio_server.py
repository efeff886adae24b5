"""A stdio MCP server of the Python SDK (`mcp`, from tests/interop/clients/requirements.txt),
for mcp-auth-gateway's `wrap` tests (gateway/tests/sdk_client.rs).

    python stdio_server.py

Speaks MCP over stdin/stdout with the names the TypeScript test client
(tests/interop/clients/gateway.mjs) calls, so that one client drives both this server and
server-everything:

- tools: `echo` (answers `Echo: <message>`), `trigger-long-running-operation` (reports progress
  `1..steps`, then answers `Long running operation completed ...`), `trigger-sampling-request`
  (asks the client for its roots and a sampling/createMessage, and answers with both) and
  `trigger-elicitation-request` (asks the client for a name with elicitation/create);
- a text resource, `test://python/greeting`;
- a prompt, `simple-prompt`.

It logs one line to stderr when it starts (the gateway prefixes it into its own log).
"""

import sys

from pydantic import BaseModel

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import SamplingMessage, TextContent

server = MCPServer("gateway-python-stdio-test")


@server.tool()
def echo(message: str) -> str:
    """Echoes the message back."""
    return f"Echo: {message}"


@server.tool(name="trigger-long-running-operation")
async def long_running(duration: float, steps: int, ctx: Context) -> str:
    """Reports progress 1..steps, then answers."""
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps, f"step {i}")
    return f"Long running operation completed. Duration: {duration} seconds, Steps: {steps}."


@server.tool(name="trigger-sampling-request")
async def sampling(prompt: str, maxTokens: int, ctx: Context) -> str:  # noqa: N803 (the MCP name)
    """Asks the client for its roots and to sample, and answers with both."""
    roots = await ctx.session.list_roots()
    result = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
        max_tokens=maxTokens,
        related_request_id=ctx.request_id,
    )
    names = ", ".join(root.name or str(root.uri) for root in roots.roots)
    return f"LLM sampling result: {result.content.text} (roots: {names})"


class Name(BaseModel):
    name: str


@server.tool(name="trigger-elicitation-request")
async def elicitation(ctx: Context) -> str:
    """Asks the client for a name."""
    result = await ctx.elicit("What is your name?", schema=Name)
    if result.action != "accept":
        return f"Elicitation {result.action}"
    return f"Elicitation accepted: name={result.data.name}"


@server.resource("test://python/greeting", name="greeting", mime_type="text/plain")
def greeting() -> str:
    """A plain text resource."""
    return "Hello from the Python SDK over stdio"


@server.prompt(name="simple-prompt")
def simple_prompt() -> str:
    """A prompt without arguments."""
    return "This is a simple prompt from the Python SDK."


if __name__ == "__main__":
    print("Starting the Python SDK stdio server", file=sys.stderr, flush=True)
    server.run("stdio")
