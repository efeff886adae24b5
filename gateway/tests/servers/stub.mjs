// A tiny stdio MCP server for mcp-auth-gateway's tests (no dependencies), with tools that
// misbehave on purpose:
//   env       the process environment, as JSON text
//   pids      {"pid":…,"grandchild":…}: this process and the `sleep` it started
//   big       a text of `bytes` bytes (over --max-message-bytes, if asked)
//   garbage   prints a line that is not JSON and an answer to an id never sent, then answers
//   hang      never answers
//   counts    {"initialize":n,"initialized":m}: the handshakes this process received
//   gate      waits until two `gate` calls are in flight, then sends each a progress
//             notification (its own token, its `text` as the message) and answers both, the
//             second first, with its `text`
//   ask       sends the client its `requests` ([{method, params}]) one after the other, each
//             once the previous one is answered (after a `notifications/message` if `log`), then
//             answers with the JSON text of what came back ([{result}|{error}])
//   asked     {"answers":[…],"cancelled":[…]}: every answer to an `ask` request this process
//             received, and the request ids named by `notifications/cancelled`
//   notify    sends its `notifications` ([{method, params}]), then answers
//   subscribed {"subscribe":[…],"unsubscribe":[…]}: the URIs of every `resources/subscribe`
//             and `resources/unsubscribe` received, in order
// With --subscribe it declares the `resources.subscribe` capability (it answers those
// requests either way).
// With --stubborn it ignores SIGTERM (the gateway must kill its process group). It always
// starts a grandchild (`sleep 600`) in its process group, so that tests can check that the
// group is ended.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const stubborn = process.argv.includes('--stubborn');
const subscribe = process.argv.includes('--subscribe');
if (stubborn) process.on('SIGTERM', () => process.stderr.write('ignoring SIGTERM\n'));
const grandchild = spawn('sleep', ['600'], { stdio: 'ignore' });

const send = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);
const answer = (id, result) => send({ jsonrpc: '2.0', id, result });
const textResult = (text) => ({ content: [{ type: 'text', text }] });

const counts = { initialize: 0, initialized: 0 };
const gated = [];
// The requests this server sent, by id: what to do with the answer.
const waiting = new Map();
const asked = { answers: [], cancelled: [] };
const subscribed = { subscribe: [], unsubscribe: [] };
let nextAsk = 1;

const ask = (msg, requests, log, got) => {
  if (requests.length === 0) return answer(msg.id, textResult(JSON.stringify(got)));
  const [{ method, params }, ...rest] = requests;
  if (log) {
    send({ jsonrpc: '2.0', method: 'notifications/message',
           params: { level: 'info', data: `asking ${method}` } });
  }
  const id = `ask-${nextAsk++}`;
  waiting.set(id, (reply) => {
    const entry = reply.error !== undefined ? { error: reply.error } : { result: reply.result };
    asked.answers.push(entry);
    ask(msg, rest, log, [...got, entry]);
  });
  return send({ jsonrpc: '2.0', id, method, params });
};

const tools = ['env', 'pids', 'big', 'garbage', 'hang', 'counts', 'gate', 'ask', 'asked', 'notify', 'subscribed'].map((name) => ({
  name,
  inputSchema: { type: 'object' },
}));

createInterface({ input: process.stdin }).on('line', (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return;
  }
  if (msg.method === 'notifications/initialized') counts.initialized += 1;
  if (msg.method === 'notifications/cancelled') asked.cancelled.push(msg.params?.requestId);
  if (msg.method === undefined && waiting.has(msg.id)) {
    const then = waiting.get(msg.id);
    waiting.delete(msg.id);
    return then(msg);
  }
  if (msg.id === undefined || msg.method === undefined) return;
  switch (msg.method) {
    case 'initialize':
      counts.initialize += 1;
      return answer(msg.id, {
        protocolVersion: msg.params?.protocolVersion ?? '2025-11-25',
        capabilities: subscribe ? { tools: {}, resources: { subscribe: true } } : { tools: {} },
        serverInfo: { name: 'gateway-test-stub', version: '0.0.0' },
      });
    case 'ping':
      return answer(msg.id, {});
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      subscribed[msg.method.slice('resources/'.length)].push(msg.params?.uri);
      return answer(msg.id, {});
    case 'tools/list':
      return answer(msg.id, { tools });
    case 'tools/call': {
      const args = msg.params?.arguments ?? {};
      switch (msg.params?.name) {
        case 'env':
          return answer(msg.id, textResult(JSON.stringify(process.env)));
        case 'pids':
          return answer(msg.id, textResult(JSON.stringify({ pid: process.pid, grandchild: grandchild.pid })));
        case 'big':
          return answer(msg.id, textResult('x'.repeat(args.bytes ?? 1024)));
        case 'garbage':
          process.stdout.write('this line is not JSON\n');
          send({ jsonrpc: '2.0', id: 987654, result: {} });
          return answer(msg.id, textResult('after garbage'));
        case 'hang':
          return undefined;
        case 'counts':
          return answer(msg.id, textResult(JSON.stringify(counts)));
        case 'ask':
          return ask(msg, args.requests ?? [], args.log === true, []);
        case 'asked':
          return answer(msg.id, textResult(JSON.stringify(asked)));
        case 'notify':
          for (const { method, params } of args.notifications ?? []) send({ jsonrpc: '2.0', method, params });
          return answer(msg.id, textResult('notified'));
        case 'subscribed':
          return answer(msg.id, textResult(JSON.stringify(subscribed)));
        case 'gate':
          gated.push(msg);
          if (gated.length < 2) return undefined;
          for (const m of gated) {
            const progressToken = m.params?._meta?.progressToken;
            if (progressToken !== undefined) {
              send({ jsonrpc: '2.0', method: 'notifications/progress',
                     params: { progressToken, progress: 1, message: m.params.arguments.text } });
            }
          }
          for (const m of gated.splice(0).reverse()) answer(m.id, textResult(m.params.arguments.text));
          return undefined;
        default:
          return send({ jsonrpc: '2.0', id: msg.id, error: { code: -32602, message: 'unknown tool' } });
      }
    }
    default:
      return send({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } });
  }
});
// Without --stubborn, end of input ends the server (as the stdio transport expects).
process.stdin.on('end', () => {
  if (!stubborn) {
    grandchild.kill();
    process.exit(0);
  }
});
