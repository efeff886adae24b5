// A real MCP client (the TypeScript SDK, @modelcontextprotocol/sdk) driven headlessly by
// mcp-server-auth's interop tests (tests/interop_clients.rs). The Python twin is client.py: same
// arguments, same output.
//
//   node client.mjs --url URL [--flow client_credentials|auth_code|static|none]
//                   [--scope "mcp:read"] [--issuer ISSUER]
//                   [--client-id ID --client-secret SECRET] [--header "Name: value"]...
//                   [--steps JSON]
//
//   --flow client_credentials  ClientCredentialsProvider with --client-id/--client-secret
//                              (default mcp-test-client / mcp-test-secret) and --scope
//   --flow auth_code           authorization code + PKCE: an in-memory OAuthClientProvider that
//                              registers itself (RFC 7591) unless --client-id is given, and
//                              follows the authorization server's redirects itself (keeping
//                              cookies) instead of opening a browser
//   --flow static | none       no auth provider; --header adds fixed request headers
//   --steps                    a JSON list run in order after connecting, each one of
//                              {"call":"tools/list"}, {"call":"TOOL","args":{...}}, {"sleep_ms":N}
//
// It prints ONE JSON line on stdout and exits 0 even when the connection or a step fails (the
// Rust test asserts on the JSON); exit 2 means bad arguments. The line:
//   {"sdk":"typescript","connect":{"ok":…,"error":…,"status":…},
//    "steps":[{"call":…,"ok":true,"text":…,"tools":[…]} | {"call":…,"ok":false,"error":…,"status":…}],
//    "http":[{"method":…,"url":…,"kind":"mcp|prm|as_metadata|register|token|authorize|other",
//             "status":…,"www_authenticate":…,"grant_type":…,"resource":…,"scope":…,"rpc":…}
//            | {"kind":"step","index":N,"call":…|"sleep_ms":…} (where step N's exchanges begin)]}
// Secrets (tokens, client secrets, codes, verifiers) are never printed: for token requests only
// grant_type, resource and scope are recorded. Diagnostics go to stderr.

import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

// The SDK and its dependencies write nothing to stdout but our one line.
console.log = console.info = (...args) => console.error(...args);

function usage(message) {
  process.stderr.write(`client.mjs: ${message}\n`);
  process.exit(2);
}

let options;
try {
  ({ values: options } = parseArgs({
    options: {
      url: { type: 'string' },
      flow: { type: 'string', default: 'none' },
      scope: { type: 'string' },
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      header: { type: 'string', multiple: true, default: [] },
      steps: { type: 'string', default: '[{"call":"tools/list"}]' },
    },
    strict: true,
  }));
} catch (e) {
  usage(e.message);
}
if (!options.url) usage('--url is required');
const FLOWS = ['client_credentials', 'auth_code', 'static', 'none'];
if (!FLOWS.includes(options.flow)) usage(`--flow must be one of ${FLOWS.join(', ')}`);
let steps;
try {
  steps = JSON.parse(options.steps);
  if (!Array.isArray(steps)) throw new Error('not a list');
} catch (e) {
  usage(`--steps must be a JSON list: ${e.message}`);
}
const headers = {};
for (const h of options.header) {
  const i = h.indexOf(':');
  if (i <= 0) usage(`--header must be "Name: value", got ${JSON.stringify(h)}`);
  headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}
const serverUrl = new URL(options.url);
const REDIRECT_URI = 'http://127.0.0.1/callback';

// ---------------------------------------------------------------------------------------------
// Every HTTP exchange the SDK makes goes through this fetch, and is recorded.

const exchanges = [];

function kindOf(url, method, params) {
  const u = new URL(url);
  if (u.origin === serverUrl.origin && u.pathname === serverUrl.pathname) return 'mcp';
  if (u.pathname.startsWith('/.well-known/oauth-protected-resource')) return 'prm';
  if (
    u.pathname.startsWith('/.well-known/oauth-authorization-server') ||
    u.pathname.startsWith('/.well-known/openid-configuration')
  ) {
    return 'as_metadata';
  }
  if (params?.has('grant_type')) return 'token';
  if (method === 'POST' && /\/reg(istration|ister)?\b/.test(u.pathname)) return 'register';
  return 'other';
}

function formParams(body) {
  if (body instanceof URLSearchParams) return body;
  if (typeof body === 'string' && /^[\w.~%+-]+=/.test(body) && !body.startsWith('{')) {
    return new URLSearchParams(body);
  }
  return undefined;
}

async function recordingFetch(input, init = {}) {
  const url = input instanceof Request ? input.url : String(input);
  const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const params = formParams(init.body);
  const entry = { method, url, kind: kindOf(url, method, params) };
  if (params) {
    for (const name of ['grant_type', 'resource', 'scope']) {
      if (params.has(name)) entry[name] = params.getAll(name).join(' ');
    }
  }
  if (entry.kind === 'mcp' && typeof init.body === 'string') {
    try {
      entry.rpc = JSON.parse(init.body).method;
    } catch {
      // not JSON
    }
  }
  exchanges.push(entry);
  try {
    const response = await fetch(input, init);
    entry.status = response.status;
    const challenge = response.headers.get('www-authenticate');
    if (challenge !== null) entry.www_authenticate = challenge;
    return response;
  } catch (e) {
    entry.error = String(e?.message ?? e);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// The authorization-code flow without a browser.

/** Follows the authorization server's redirects from `url`, keeping cookies, until the redirect
 * URI; returns its query parameters. */
async function followAuthorization(url) {
  const cookies = new Map();
  let next = url;
  for (let hop = 0; hop < 15; hop++) {
    const cookieHeader = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const entry = { method: 'GET', url: next.split('?')[0], kind: 'authorize' };
    const query = new URL(next).searchParams;
    for (const name of ['resource', 'scope', 'code_challenge_method']) {
      if (query.has(name)) entry[name] = query.getAll(name).join(' ');
    }
    exchanges.push(entry);
    const response = await fetch(next, {
      redirect: 'manual',
      headers: cookieHeader ? { cookie: cookieHeader } : {},
    });
    entry.status = response.status;
    for (const c of response.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /expires=thu, 01 jan 1970/i.test(a.trim()));
      if (!value || expired) cookies.delete(name);
      else cookies.set(name, value);
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) {
      const body = await response.text().catch(() => '');
      throw new Error(`authorization stopped at ${next.split('?')[0]}: HTTP ${response.status}: ${body.slice(0, 300)}`);
    }
    await response.body?.cancel();
    const target = new URL(location, next);
    if (target.href.startsWith(`${REDIRECT_URI}?`)) {
      const result = Object.fromEntries(target.searchParams);
      if (result.error) {
        throw new Error(`authorization refused: ${result.error} ${result.error_description ?? ''}`.trim());
      }
      return result;
    }
    next = target.href;
  }
  throw new Error('authorization: too many redirects');
}

/** An in-memory OAuthClientProvider for the authorization-code flow; it stores what the SDK
 * gives it unchanged, and "redirects" by following the authorization server's redirects. */
class HeadlessProvider {
  constructor({ clientId, clientSecret, scope }) {
    this._client = clientId ? { client_id: clientId, client_secret: clientSecret } : undefined;
    this._scope = scope;
    this._tokens = undefined;
    this._verifier = undefined;
    this.pendingCode = undefined;
  }
  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadata() {
    return {
      client_name: 'mcp-server-auth interop (TypeScript SDK)',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: this._client?.client_secret ? 'client_secret_basic' : 'none',
      ...(this._scope ? { scope: this._scope } : {}),
    };
  }
  clientInformation() {
    return this._client;
  }
  saveClientInformation(info) {
    this._client = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }
  codeVerifier() {
    if (!this._verifier) throw new Error('no code verifier saved');
    return this._verifier;
  }
  async redirectToAuthorization(authorizationUrl) {
    const sentState = authorizationUrl.searchParams.get('state');
    const result = await followAuthorization(authorizationUrl.href);
    if (sentState !== null && result.state !== sentState) {
      throw new Error('authorization: state mismatch');
    }
    if (!result.code) throw new Error('authorization: no code in the redirect');
    this.pendingCode = result.code;
  }
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') {
      if (!options['client-id']) this._client = undefined;
    }
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
  }
  /** The code the last redirect produced, once. */
  takeCode() {
    const code = this.pendingCode;
    this.pendingCode = undefined;
    return code;
  }
}

// ---------------------------------------------------------------------------------------------

function errorInfo(e) {
  const info = { ok: false, error: `${e?.name ?? 'Error'}: ${e?.message ?? e}` };
  if (typeof e?.code === 'number' && e.code >= 100 && e.code < 600) info.status = e.code;
  return info;
}

function resultText(result) {
  return (result?.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
}

let authProvider;
if (options.flow === 'client_credentials') {
  const providerOptions = {
    clientId: options['client-id'] ?? 'mcp-test-client',
    clientSecret: options['client-secret'] ?? 'mcp-test-secret',
    clientName: 'mcp-server-auth interop (TypeScript SDK)',
  };
  if (options.scope) providerOptions.scope = options.scope;
  if (options.issuer) providerOptions.expectedIssuer = options.issuer;
  authProvider = new ClientCredentialsProvider(providerOptions);
} else if (options.flow === 'auth_code') {
  authProvider = new HeadlessProvider({
    clientId: options['client-id'],
    clientSecret: options['client-secret'],
    scope: options.scope,
  });
}

function newTransport() {
  return new StreamableHTTPClientTransport(serverUrl, {
    authProvider,
    fetch: recordingFetch,
    requestInit: Object.keys(headers).length ? { headers } : undefined,
  });
}

let client;
let transport;

/** Connects; in the code flow, finishes a pending authorization and connects again. */
async function connect() {
  for (let attempt = 0; ; attempt++) {
    client = new Client({ name: 'mcp-server-auth-interop-ts', version: '0.0.0' });
    transport = newTransport();
    try {
      await client.connect(transport);
      return;
    } catch (e) {
      const code = authProvider instanceof HeadlessProvider ? authProvider.takeCode() : undefined;
      await client.close().catch(() => {});
      if (!(e instanceof UnauthorizedError) || !code || attempt > 0) throw e;
      await transport.finishAuth(code);
    }
  }
}

/** Runs a request; in the code flow, an UnauthorizedError after a new authorization (the
 * server asked for one mid-session) finishes it and retries once. */
async function withReauthorization(run) {
  try {
    return await run();
  } catch (e) {
    const code = authProvider instanceof HeadlessProvider ? authProvider.takeCode() : undefined;
    if (!(e instanceof UnauthorizedError) || !code) throw e;
    await transport.finishAuth(code);
    return await run();
  }
}

const output = { sdk: 'typescript', connect: null, steps: [], http: exchanges };
try {
  await connect();
  output.connect = { ok: true };
} catch (e) {
  output.connect = errorInfo(e);
  process.stderr.write(`connect failed: ${e?.stack ?? e}\n`);
}
if (output.connect.ok) {
  for (const [index, step] of steps.entries()) {
    // Marks where each step's exchanges begin.
    exchanges.push({ kind: 'step', index, ...step, args: undefined });
    if (typeof step.sleep_ms === 'number') {
      await new Promise((resolve) => setTimeout(resolve, step.sleep_ms));
      output.steps.push({ sleep_ms: step.sleep_ms, ok: true });
      continue;
    }
    const record = { call: step.call };
    try {
      if (step.call === 'tools/list') {
        const result = await withReauthorization(() => client.listTools());
        record.ok = true;
        record.tools = result.tools.map((t) => t.name);
      } else {
        const result = await withReauthorization(() =>
          client.callTool({ name: step.call, arguments: step.args ?? {} }),
        );
        record.ok = !result.isError;
        record.text = resultText(result);
        if (result.isError) record.error = `tool error: ${record.text}`;
      }
    } catch (e) {
      Object.assign(record, errorInfo(e));
      process.stderr.write(`step ${step.call} failed: ${e?.stack ?? e}\n`);
    }
    output.steps.push(record);
  }
  await client.close().catch(() => {});
}
process.stdout.write(`${JSON.stringify(output)}\n`);
process.exit(0);
