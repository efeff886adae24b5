// A real MCP client (the TypeScript SDK, @modelcontextprotocol/sdk) driving a wrapped stdio
// server through mcp-auth-gateway (gateway/tests/wrap.rs). It exercises what a bridge must
// carry both ways, against @modelcontextprotocol/server-everything:
//
//   node gateway.mjs --url URL --token TOKEN
//
// With a static bearer token it connects (declaring sampling, elicitation and roots), then:
// lists tools, calls `echo`, lists and reads a resource, gets `simple-prompt`, calls
// `trigger-long-running-operation` with a progress callback, and calls
// `trigger-sampling-request` and `trigger-elicitation-request`, answering the server's
// requests itself. It prints ONE JSON line on stdout and exits 0 even when a step fails (the
// Rust test asserts on the JSON); exit 2 means bad arguments:
//   {"connect":{"ok":…},"tools":[names],"echo":text,"resource":{"uri":…,"text":…},
//    "prompt":text,"progress":[numbers],"long":text,"sampling":text,"elicitation":text,
//    "server_requests":[methods],"errors":{step:message}}
// The token is never printed.

import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

// The SDK writes nothing to stdout but our one line.
console.log = console.info = (...args) => console.error(...args);

let options;
try {
  ({ values: options } = parseArgs({
    options: { url: { type: 'string' }, token: { type: 'string' } },
    strict: true,
  }));
} catch (e) {
  process.stderr.write(`gateway.mjs: ${e.message}\n`);
  process.exit(2);
}
if (!options.url || !options.token) {
  process.stderr.write('gateway.mjs: --url and --token are required\n');
  process.exit(2);
}

const out = { connect: { ok: false }, server_requests: [], progress: [], errors: {} };
const text = (result) =>
  (result?.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');

async function step(name, run) {
  try {
    await run();
  } catch (e) {
    out.errors[name] = `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
  }
}

const client = new Client(
  { name: 'mcp-auth-gateway-test', version: '0.0.0' },
  { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } },
);
client.setRequestHandler(CreateMessageRequestSchema, async () => {
  out.server_requests.push('sampling/createMessage');
  return {
    model: 'test-model',
    role: 'assistant',
    content: { type: 'text', text: 'sampled through the gateway' },
  };
});
client.setRequestHandler(ElicitRequestSchema, async () => {
  out.server_requests.push('elicitation/create');
  return { action: 'accept', content: { name: 'Gateway Tester' } };
});
client.setRequestHandler(ListRootsRequestSchema, async () => {
  out.server_requests.push('roots/list');
  return { roots: [{ uri: 'file:///tmp/gateway-test', name: 'test root' }] };
});

const transport = new StreamableHTTPClientTransport(new URL(options.url), {
  requestInit: { headers: { Authorization: `Bearer ${options.token}` } },
});

const timeout = { timeout: 30_000 };
try {
  await client.connect(transport);
  out.connect = { ok: true, session: transport.sessionId !== undefined };
} catch (e) {
  out.connect = { ok: false, error: `${e?.name ?? 'Error'}: ${e?.message ?? e}` };
}

if (out.connect.ok) {
  await step('tools', async () => {
    out.tools = (await client.listTools(undefined, timeout)).tools.map((t) => t.name);
  });
  await step('echo', async () => {
    const r = await client.callTool({ name: 'echo', arguments: { message: 'through the gateway' } }, undefined, timeout);
    out.echo = text(r);
  });
  await step('resource', async () => {
    const { resources } = await client.listResources(undefined, timeout);
    const first = resources.find((r) => r.mimeType?.startsWith('text/')) ?? resources[0];
    const r = await client.readResource({ uri: first.uri }, timeout);
    out.resource = { uri: first.uri, text: r.contents[0]?.text ?? null, count: resources.length };
  });
  await step('prompt', async () => {
    const r = await client.getPrompt({ name: 'simple-prompt' }, timeout);
    out.prompt = r.messages.map((m) => m.content?.text ?? '').join('\n');
  });
  await step('long', async () => {
    const r = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
      undefined,
      { ...timeout, onprogress: (p) => out.progress.push(p.progress) },
    );
    out.long = text(r);
  });
  await step('sampling', async () => {
    const r = await client.callTool(
      { name: 'trigger-sampling-request', arguments: { prompt: 'hello', maxTokens: 10 } },
      undefined,
      timeout,
    );
    out.sampling = text(r);
  });
  await step('elicitation', async () => {
    const r = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} }, undefined, timeout);
    out.elicitation = text(r);
  });
  await step('close', async () => {
    await transport.terminateSession();
    await client.close();
  });
}

process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
