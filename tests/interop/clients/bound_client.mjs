// An MCP client with sender-constrained tokens, for mcp-server-auth's interop tests
// (tests/interop_dpop.rs): DPoP-bound tokens (RFC 9449) or certificate-bound ones (RFC 8705).
// The TypeScript SDK in the lock file (@modelcontextprotocol/sdk 1.32) knows the DPoP metadata
// fields but sends no proofs, so the MCP protocol is the SDK's (Client over
// StreamableHTTPClientTransport) and the authorization is done here, in the fetch the SDK is
// given, with `jose` for the keys and proofs.
//
//   node bound_client.mjs --url URL --mode dpop|mtls --client-id ID --client-secret SECRET
//                         [--scope "mcp:read"] [--steps JSON]
//                         [--cert FILE --key FILE] [--ca FILE]      (mtls; --ca for any https)
//                         [--probe downgrade|replay|no_certificate]...
//
// The fetch given to the SDK: on a 401 it discovers the authorization server (RFC 9728
// `resource_metadata` of the challenge → Protected Resource Metadata → RFC 8414 metadata of its
// first authorization server), gets a token with `client_credentials` for `resource` = the
// metadata's resource, and retries. In `dpop` mode it makes a fresh ES256 key, sends a proof to
// the token endpoint (htm POST, htu the endpoint) and with every MCP request (`Authorization:
// DPoP`, htm/htu of the request, `ath`), and answers `use_dpop_nonce` (400 from the
// authorization server, 401 from the resource server) with one retry carrying the `DPoP-Nonce`
// it was given; a nonce on any answer is used for the next proof to that origin. In `mtls` mode
// it presents the client certificate on every HTTPS connection (the token endpoint is the
// metadata's `mtls_endpoint_aliases.token_endpoint`, RFC 8705 §5) and sends `Bearer` tokens.
//
// Probes, after the steps, each replaying the last MCP request that succeeded with the token:
//   downgrade       the same token with `Authorization: Bearer` and no proof (RFC 9449 §7.2)
//   replay          the same request with the very same DPoP proof (RFC 9449 §11.1)
//   no_certificate  the same request over a connection without a client certificate
//
// It prints ONE JSON line on stdout and exits 0 even when something fails (the Rust test
// asserts on the JSON); exit 2 means bad arguments. The line:
//   {"client":"bound","mode":…,"connect":{"ok":…,"error":…},"steps":[…as client.mjs…],
//    "key":{"jkt":…} (dpop) | {"x5t#S256":…} (mtls), "prm":{…}, "as_metadata":{…},
//    "token":{"token_type":…,"claims":{"aud","scope","client_id","cnf"}},
//    "probes":{"downgrade":{"status":…,"www_authenticate":[…]},…},
//    "http":[{"method","url","kind":"mcp|prm|as_metadata|token","status","www_authenticate",
//             "auth_scheme","dpop":bool,"nonce":bool,"dpop_nonce_received":bool,"rpc",…}]}
// Tokens, proofs, keys and secrets are never printed. Diagnostics go to stderr.

import { X509Certificate, createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair } from 'jose';

console.log = console.info = (...args) => console.error(...args);

function usage(message) {
  process.stderr.write(`bound_client.mjs: ${message}\n`);
  process.exit(2);
}

let options;
try {
  ({ values: options } = parseArgs({
    options: {
      url: { type: 'string' },
      mode: { type: 'string' },
      scope: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
      probe: { type: 'string', multiple: true, default: [] },
      steps: { type: 'string', default: '[{"call":"tools/list"}]' },
    },
    strict: true,
  }));
} catch (e) {
  usage(e.message);
}
if (!options.url) usage('--url is required');
if (!['dpop', 'mtls'].includes(options.mode)) usage('--mode must be dpop or mtls');
if (!options['client-id'] || !options['client-secret']) usage('--client-id and --client-secret are required');
if (options.mode === 'mtls' && !(options.cert && options.key)) usage('--mode mtls needs --cert and --key');
const PROBES = ['downgrade', 'replay', 'no_certificate'];
for (const p of options.probe) if (!PROBES.includes(p)) usage(`--probe must be one of ${PROBES.join(', ')}`);
let steps;
try {
  steps = JSON.parse(options.steps);
  if (!Array.isArray(steps)) throw new Error('not a list');
} catch (e) {
  usage(`--steps must be a JSON list: ${e.message}`);
}
const serverUrl = new URL(options.url);
const dpop = options.mode === 'dpop';
const tls = {
  ca: options.ca ? readFileSync(options.ca) : undefined,
  cert: options.cert ? readFileSync(options.cert) : undefined,
  key: options.key ? readFileSync(options.key) : undefined,
};

// ---------------------------------------------------------------------------------------------
// HTTP: global fetch for http:, node:https (which can present a client certificate) for https:.

function headersOf(nodeHeaders) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(nodeHeaders)) {
    for (const v of [value].flat()) if (v !== undefined) headers.append(name, String(v));
  }
  return headers;
}

/** A fetch over node:https with `clientTls` (certificate, key, CA), returning a web Response. */
function httpsFetch(url, init, clientTls) {
  return new Promise((resolve, reject) => {
    const headers = Object.fromEntries(new Headers(init.headers ?? {}));
    const body = init.body ?? undefined;
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const req = https.request(url, {
      method: init.method ?? 'GET',
      headers,
      ca: clientTls.ca,
      cert: clientTls.cert,
      key: clientTls.key,
      agent: false,
    }, (res) => {
      const empty = [101, 204, 205, 304].includes(res.statusCode) || init.method === 'HEAD';
      if (empty) res.resume();
      resolve(new Response(empty ? null : Readable.toWeb(res), {
        status: res.statusCode,
        headers: headersOf(res.headers),
      }));
    });
    req.on('error', reject);
    init.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** One HTTP request; `clientTls` says which certificate (if any) an https: connection shows. */
function send(url, init, clientTls = tls) {
  return new URL(url).protocol === 'https:' ? httpsFetch(url, init, clientTls) : fetch(url, init);
}

// ---------------------------------------------------------------------------------------------
// Recording (without secrets).

const exchanges = [];
const output = { client: 'bound', mode: options.mode, connect: null, steps: [], probes: {}, http: exchanges };

function record(entry, response, headers) {
  entry.status = response.status;
  const challenges = response.headers.get('www-authenticate');
  if (challenges !== null) entry.www_authenticate = challenges;
  if (response.headers.has('dpop-nonce')) entry.dpop_nonce_received = true;
  const auth = headers?.get('authorization');
  if (auth) entry.auth_scheme = auth.split(' ')[0];
  if (headers) {
    entry.dpop = headers.has('dpop');
    if (entry.dpop) entry.nonce = nonceSent.has(headers.get('dpop'));
  }
  return response;
}

// ---------------------------------------------------------------------------------------------
// DPoP proofs (RFC 9449 §4).

const { privateKey, publicKey } = await generateKeyPair('ES256');
const publicJwk = await exportJWK(publicKey);
const nonces = new Map(); // origin → the last DPoP-Nonce it sent
const nonceSent = new Set(); // the proofs that carried a nonce
if (dpop) {
  output.key = { jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
} else {
  const raw = new X509Certificate(tls.cert).raw;
  output.key = { 'x5t#S256': createHash('sha256').update(raw).digest('base64url') };
}

async function proof(method, url, token) {
  const u = new URL(url);
  const claims = {
    jti: randomUUID(),
    htm: method,
    htu: `${u.origin}${u.pathname}`,
    iat: Math.floor(Date.now() / 1000),
  };
  if (token) claims.ath = createHash('sha256').update(token).digest('base64url');
  const nonce = nonces.get(u.origin);
  if (nonce) claims.nonce = nonce;
  const jwt = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk })
    .sign(privateKey);
  if (nonce) nonceSent.add(jwt);
  return jwt;
}

function rememberNonce(url, response) {
  const nonce = response.headers.get('dpop-nonce');
  if (nonce) nonces.set(new URL(url).origin, nonce);
}

function asksForNonce(response) {
  return (response.headers.get('www-authenticate') ?? '').includes('use_dpop_nonce');
}

// ---------------------------------------------------------------------------------------------
// Discovery and the token request.

let token;

function challengeParam(header, name) {
  const m = new RegExp(`${name}="([^"]*)"`).exec(header ?? '');
  return m ? m[1] : undefined;
}

async function getJson(url, kind) {
  const entry = { method: 'GET', url, kind };
  exchanges.push(entry);
  const response = record(entry, await send(url, { headers: { accept: 'application/json' } }));
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.json();
}

async function authorize(challenges) {
  const prmUrl = challengeParam(challenges, 'resource_metadata');
  if (!prmUrl) throw new Error(`no resource_metadata in the challenge: ${challenges}`);
  const prm = await getJson(prmUrl, 'prm');
  output.prm = prm;
  if (prm.resource !== serverUrl.href) throw new Error(`metadata for another resource: ${prm.resource}`);
  const issuer = new URL(prm.authorization_servers?.[0]);
  const as = await getJson(`${issuer.origin}/.well-known/oauth-authorization-server${issuer.pathname.replace(/\/$/, '')}`, 'as_metadata');
  output.as_metadata = {
    issuer: as.issuer,
    dpop_signing_alg_values_supported: as.dpop_signing_alg_values_supported,
    tls_client_certificate_bound_access_tokens: as.tls_client_certificate_bound_access_tokens,
    mtls_endpoint_aliases: as.mtls_endpoint_aliases,
  };
  if (dpop && !as.dpop_signing_alg_values_supported?.includes('ES256')) {
    throw new Error('the authorization server does not take ES256 DPoP proofs');
  }
  const endpoint = dpop ? as.token_endpoint : (as.mtls_endpoint_aliases?.token_endpoint ?? as.token_endpoint);
  const form = new URLSearchParams({ grant_type: 'client_credentials', resource: prm.resource });
  if (options.scope) form.set('scope', options.scope);
  const basic = Buffer.from(
    `${encodeURIComponent(options['client-id'])}:${encodeURIComponent(options['client-secret'])}`,
  ).toString('base64');
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = new Headers({
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    });
    if (dpop) headers.set('dpop', await proof('POST', endpoint, undefined));
    const entry = { method: 'POST', url: endpoint, kind: 'token', grant_type: 'client_credentials', resource: prm.resource, scope: options.scope };
    exchanges.push(entry);
    const response = record(entry, await send(endpoint, { method: 'POST', headers, body: form.toString() }), headers);
    entry.auth_scheme = undefined; // the client's own credentials, not a token
    if (dpop) rememberNonce(endpoint, response);
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      token = body.access_token;
      const claims = decodeJwt(token);
      output.token = {
        token_type: body.token_type,
        claims: { aud: claims.aud, scope: claims.scope, client_id: claims.client_id, cnf: claims.cnf },
      };
      return;
    }
    entry.error = body.error;
    if (!(dpop && response.status === 400 && body.error === 'use_dpop_nonce' && attempt === 0)) {
      throw new Error(`token request refused: HTTP ${response.status} ${body.error ?? ''}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The fetch the SDK uses for the MCP server.

let lastAccepted; // the last MCP request accepted with the token: { url, method, headers, body }

async function mcpFetch(input, init = {}) {
  const url = input instanceof Request ? input.url : String(input);
  const method = (init.method ?? 'GET').toUpperCase();
  let rpc;
  try {
    rpc = typeof init.body === 'string' ? JSON.parse(init.body).method : undefined;
  } catch {
    // not JSON
  }
  let authorized = false;
  let nonceRetried = false;
  for (let attempt = 0; attempt < 4; attempt++) {
    const headers = new Headers(init.headers ?? {});
    if (token) {
      headers.set('authorization', `${dpop ? 'DPoP' : 'Bearer'} ${token}`);
      if (dpop) headers.set('dpop', await proof(method, url, token));
    }
    const entry = { method, url, kind: 'mcp', rpc };
    exchanges.push(entry);
    const request = { ...init, method, headers };
    let response;
    try {
      response = record(entry, await send(url, request), headers);
    } catch (e) {
      entry.error = String(e?.message ?? e);
      throw e;
    }
    if (dpop) rememberNonce(url, response);
    if (response.status !== 401) {
      if (token && response.ok) lastAccepted = { url, method, headers, body: init.body };
      return response;
    }
    const challenges = response.headers.get('www-authenticate') ?? '';
    if (token && dpop && asksForNonce(response) && !nonceRetried) {
      nonceRetried = true;
      await response.body?.cancel();
      continue;
    }
    if (authorized) return response;
    await response.body?.cancel();
    authorized = true;
    await authorize(challenges);
  }
  throw new Error('too many attempts');
}

// ---------------------------------------------------------------------------------------------

async function probe(name) {
  if (!lastAccepted) return { error: 'no request was accepted' };
  const { url, method, body } = lastAccepted;
  const headers = new Headers(lastAccepted.headers);
  let clientTls = tls;
  if (name === 'downgrade') {
    headers.set('authorization', `Bearer ${token}`);
    headers.delete('dpop');
  } else if (name === 'no_certificate') {
    clientTls = { ca: tls.ca };
  }
  const entry = { method, url, kind: 'mcp', probe: name };
  exchanges.push(entry);
  const response = record(entry, await send(url, { method, headers, body }, clientTls), headers);
  await response.body?.cancel();
  return {
    status: response.status,
    www_authenticate: response.headers.get('www-authenticate')?.split(/,\s*(?=(?:Bearer|DPoP)\b)/) ?? [],
  };
}

function errorInfo(e) {
  return { ok: false, error: `${e?.name ?? 'Error'}: ${e?.message ?? e}` };
}

function resultText(result) {
  return (result?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

const client = new Client({ name: 'mcp-server-auth-interop-bound', version: '0.0.0' });
const transport = new StreamableHTTPClientTransport(serverUrl, { fetch: mcpFetch });
try {
  await client.connect(transport);
  output.connect = { ok: true };
} catch (e) {
  output.connect = errorInfo(e);
  process.stderr.write(`connect failed: ${e?.stack ?? e}\n`);
}
if (output.connect.ok) {
  for (const [index, step] of steps.entries()) {
    exchanges.push({ kind: 'step', index, call: step.call });
    const entry = { call: step.call };
    try {
      if (step.call === 'tools/list') {
        const result = await client.listTools();
        entry.ok = true;
        entry.tools = result.tools.map((t) => t.name);
      } else {
        const result = await client.callTool({ name: step.call, arguments: step.args ?? {} });
        entry.ok = !result.isError;
        entry.text = resultText(result);
      }
    } catch (e) {
      Object.assign(entry, errorInfo(e));
      process.stderr.write(`step ${step.call} failed: ${e?.stack ?? e}\n`);
    }
    output.steps.push(entry);
  }
  for (const name of options.probe) {
    try {
      output.probes[name] = await probe(name);
    } catch (e) {
      output.probes[name] = errorInfo(e);
    }
  }
  await client.close().catch(() => {});
}
process.stdout.write(`${JSON.stringify(output)}\n`);
process.exit(0);
