// A real OAuth 2.1 / OpenID Connect authorization server (npm `oidc-provider`) for the interop
// tests of mcp-server-auth. It runs on 127.0.0.1 only and issues RFC 9068 JWT access tokens for
// RFC 8707 resource indicators (or opaque ones, AS_TOKEN_FORMAT=opaque).
//
//   AS_PORT          port to listen on (default 0: a free port chosen by the OS)
//   AS_TOKEN_TTL     lifetime in seconds of access tokens issued for a resource (default 300)
//   AS_TOKEN_FORMAT  `jwt` (default) or `opaque`: the format of access tokens issued for a
//                    resource. Opaque ones keep the resource as their audience, so RFC 7662
//                    introspection answers carry `aud`.
//   AS_RS_KEY_FILE   a PEM key (a private key is accepted: only its public half is read) for the
//                    resource-server client `mcp-resource-server-jwt` (private_key_jwt, RFC 7523);
//                    that client exists only when this is set
//   AS_KEEP_STDIN    set to 1 to keep running when stdin closes (for running it by hand)
//   AS_DPOP          set to 1 for DPoP-bound tokens (RFC 9449): the `dPoP` feature configured
//                    explicitly (oidc-provider 9 has it on by default: a token request with a
//                    `DPoP` proof gets a token bound to its key, `cnf.jkt`, whether or not this is
//                    set) and the client mcp-dpop-client below, whose tokens must be DPoP-bound
//   AS_DPOP_NONCE    with AS_DPOP=1, set to 1 to make the token endpoint require server nonces
//                    (RFC 9449 §8: `use_dpop_nonce` with a `DPoP-Nonce` header first)
//   AS_MTLS          set to 1 for certificate-bound tokens (RFC 8705): the `mTLS` feature with
//                    `certificateBoundAccessTokens`, the client mcp-mtls-client below, and a
//                    second, HTTPS listener asking for client certificates, advertised as the
//                    RFC 8705 §5 `mtls_endpoint_aliases` (the issuer stays plain HTTP)
//   AS_TLS_CERT_FILE, AS_TLS_KEY_FILE  with AS_MTLS=1: the HTTPS listener's certificate chain and
//                    key (PEM). Client certificates are requested and not checked against any CA:
//                    the token is bound to whichever one the client presents (its SHA-256
//                    thumbprint becomes `cnf.x5t#S256`); the client authenticates with its secret
//
// When ready it prints exactly one line on stdout:
//   {"issuer":"http://127.0.0.1:PORT","jwks_uri":"…","token_endpoint":"…",
//    "introspection_endpoint":"…","revocation_endpoint":"…","port":PORT}
// plus, with AS_MTLS=1, "mtls_token_endpoint":"https://127.0.0.1:MTLS_PORT/token".
// Everything else (oidc-provider's notices and warnings) goes to stderr. It stops, exiting 0,
// when stdin closes (so it never outlives the test process that spawned it) or on SIGTERM/SIGINT.
//
// Clients:
//   mcp-test-client / mcp-test-secret, registered with client_secret_basic (oidc-provider accepts
//   the same secret sent as client_secret_post too)
//   mcp-resource-server / RS_SECRET below: the MCP server itself, a resource server that only
//   introspects (no grant); its secret has `:`, `%` and `+`, which client_secret_basic must
//   form-urlencode (RFC 6749 §2.3.1)
//   mcp-resource-server-jwt: the same with private_key_jwt, when AS_RS_KEY_FILE is set
//   mcp-dpop-client / mcp-dpop-secret, when AS_DPOP=1: client_credentials only, every token
//   DPoP-bound (`dpop_bound_access_tokens`: a token request without a proof is refused)
//   mcp-mtls-client / mcp-mtls-secret, when AS_MTLS=1: client_credentials only, every token bound
//   to the client certificate of the token request (`tls_client_certificate_bound_access_tokens`:
//   requests without one, e.g. to the plain HTTP token endpoint, are refused)
// `GET /test/introspection-calls` answers {"calls":N}: the introspection requests received so far
// (authenticated or not), for tests that must show a token was never introspected.
// Dynamic client registration (RFC 7591) is open. The authorization-code flow needs no browser:
// the interaction route below logs in `test-user` and consents to everything requested.

import http from 'node:http';
import https from 'node:https';
import { X509Certificate, createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

// oidc-provider writes its notices with console.info; stdout carries only the ready line.
console.log = console.info = (...args) => console.error(...args);

const { exportJWK, generateKeyPair } = await import('jose');
const { default: Provider, errors } = await import('oidc-provider');

const port = Number.parseInt(process.env.AS_PORT ?? '0', 10);
const tokenTtl = Number.parseInt(process.env.AS_TOKEN_TTL ?? '300', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  throw new Error(`AS_PORT must be a port number, got ${process.env.AS_PORT}`);
}
if (!Number.isInteger(tokenTtl) || tokenTtl <= 0) {
  throw new Error(`AS_TOKEN_TTL must be a positive number of seconds, got ${process.env.AS_TOKEN_TTL}`);
}
const tokenFormat = process.env.AS_TOKEN_FORMAT || 'jwt';
if (!['jwt', 'opaque'].includes(tokenFormat)) {
  throw new Error(`AS_TOKEN_FORMAT must be jwt or opaque, got ${tokenFormat}`);
}
const dpop = process.env.AS_DPOP === '1';
const dpopNonce = dpop && process.env.AS_DPOP_NONCE === '1';
const mtls = process.env.AS_MTLS === '1';
if (mtls && !(process.env.AS_TLS_CERT_FILE && process.env.AS_TLS_KEY_FILE)) {
  throw new Error('AS_MTLS=1 needs AS_TLS_CERT_FILE and AS_TLS_KEY_FILE');
}
// oidc-provider allows only VSCHAR (printable ASCII) in secrets.
const RS_SECRET = 'rs:secret%2B+with:colon%percent+plus';

const SCOPE = 'mcp:read mcp:write';
const ACCOUNT_ID = 'test-user';

// Listen first: the issuer must contain the port, and the Provider needs the issuer.
let app = (req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = http.createServer((req, res) => app(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const { port: actualPort } = server.address();
const issuer = `http://127.0.0.1:${actualPort}`;

// With AS_MTLS=1, the same application over TLS on a second port, asking every client for a
// certificate but accepting any (self-signed ones included): the binding is to the certificate
// presented, whoever issued it (RFC 8705 §3; the client authenticates with its secret).
let mtlsServer;
if (mtls) {
  mtlsServer = https.createServer({
    cert: readFileSync(process.env.AS_TLS_CERT_FILE),
    key: readFileSync(process.env.AS_TLS_KEY_FILE),
    requestCert: true,
    rejectUnauthorized: false,
  }, (req, res) => app(req, res));
  await new Promise((resolve, reject) => {
    mtlsServer.once('error', reject);
    mtlsServer.listen(0, '127.0.0.1', resolve);
  });
}
const mtlsOrigin = mtls ? `https://127.0.0.1:${mtlsServer.address().port}` : undefined;

/** The client certificate of this request's TLS connection (none over plain HTTP). */
function peerCertificate(ctx) {
  const { socket } = ctx.req;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const { raw } = socket.getPeerCertificate();
  return raw ? new X509Certificate(raw) : undefined;
}

// A fresh RS256 signing key on every start.
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = await exportJWK(privateKey);
jwk.kid = `test-${randomUUID()}`;
jwk.alg = 'RS256';
jwk.use = 'sig';

function isHttpUrl(value) {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

// The public half of AS_RS_KEY_FILE, for the private_key_jwt resource-server client.
const rsJwks = [];
if (process.env.AS_RS_KEY_FILE) {
  const publicJwk = await exportJWK(createPublicKey(readFileSync(process.env.AS_RS_KEY_FILE)));
  rsJwks.push({ ...publicJwk, use: 'sig' });
}

// A resource server only introspects: no grant, no redirect.
const resourceServer = (client) => ({
  grant_types: [],
  response_types: [],
  redirect_uris: [],
  ...client,
});

const provider = new Provider(issuer, {
  clients: [
    resourceServer({
      client_id: 'mcp-resource-server',
      client_secret: RS_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
    }),
    ...(rsJwks.length
      ? [resourceServer({
        client_id: 'mcp-resource-server-jwt',
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: rsJwks },
      })]
      : []),
    {
      client_id: 'mcp-test-client',
      client_secret: 'mcp-test-secret',
      grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: ['http://127.0.0.1/callback'],
      // `openid` is needed too: a client's `scope` is an allow-list for authorization requests.
      scope: `openid ${SCOPE}`,
    },
    ...(dpop
      ? [{
        client_id: 'mcp-dpop-client',
        client_secret: 'mcp-dpop-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        dpop_bound_access_tokens: true,
        scope: SCOPE,
      }]
      : []),
    ...(mtls
      ? [{
        client_id: 'mcp-mtls-client',
        client_secret: 'mcp-mtls-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        tls_client_certificate_bound_access_tokens: true,
        scope: SCOPE,
      }]
      : []),
  ],
  // RFC 8705 §5: where a client goes for mutual TLS.
  ...(mtls ? { discovery: { mtls_endpoint_aliases: { token_endpoint: `${mtlsOrigin}/token` } } } : {}),
  jwks: { keys: [jwk] },
  scopes: ['openid', 'mcp:read', 'mcp:write'],
  // Every access token, JWT or opaque, lives AS_TOKEN_TTL seconds.
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || tokenTtl,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || tokenTtl,
  },
  cookies: { keys: [randomUUID()] },
  // Refresh tokens for every code-flow client allowed the grant, without `offline_access`
  // (as MCP clients expect); a non-default function also enables the refresh_token grant.
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  interactions: {
    url(ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    registration: { enabled: true },
    ...(dpop
      ? {
        dPoP: {
          enabled: true,
          ...(dpopNonce ? { nonceSecret: randomBytes(32), requireNonce: () => true } : {}),
        },
      }
      : {}),
    ...(mtls
      ? {
        mTLS: {
          enabled: true,
          certificateBoundAccessTokens: true,
          getCertificate: peerCertificate,
        },
      }
      : {}),
    resourceIndicators: {
      enabled: true,
      // No `resource` parameter → no resource server → an opaque access token.
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (!isHttpUrl(resourceIndicator)) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: SCOPE,
          audience: resourceIndicator,
          accessTokenFormat: tokenFormat,
          accessTokenTTL: tokenTtl,
          ...(tokenFormat === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
        };
      },
    },
  },
});

// Headless login and consent: whatever the interaction asks for is granted to `test-user`.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session, grantId } = details;
  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT_ID } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  if (prompt.name === 'consent') {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    grant.addOIDCScope('openid');
    if (prompt.details.missingOIDCScope) {
      grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    }
    if (prompt.details.missingOIDCClaims) {
      grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    }
    const requested = [params.resource ?? []].flat().filter(isHttpUrl);
    for (const resource of requested) {
      grant.addResourceScope(resource, SCOPE);
    }
    for (const [resource, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const result = { consent: { grantId: await grant.save() } };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
    return;
  }
  res.statusCode = 501;
  res.end(`prompt ${prompt.name} is not implemented by the test server`);
}

const providerCallback = provider.callback();
const introspectionPath = new URL(provider.urlFor('introspection')).pathname;
let introspectionCalls = 0;
app = (req, res) => {
  const path = req.url.split('?')[0];
  if (path === introspectionPath) {
    introspectionCalls += 1;
  }
  if (path === '/test/introspection-calls') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ calls: introspectionCalls }));
    return;
  }
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('interaction failed:', err);
      if (!res.headersSent) {
        res.statusCode = 500;
        res.setHeader('content-type', 'text/plain');
      }
      res.end(`interaction failed: ${err?.message ?? err}`);
    });
    return;
  }
  providerCallback(req, res);
};

let stopping = false;
function stop(why) {
  if (stopping) return;
  stopping = true;
  console.error(`authorization server stopping (${why})`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  mtlsServer?.close();
  mtlsServer?.closeAllConnections();
  // Never hang on the way out.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
if (process.env.AS_KEEP_STDIN !== '1') {
  process.stdin.on('end', () => stop('stdin closed'));
  process.stdin.on('close', () => stop('stdin closed'));
  process.stdin.on('error', () => stop('stdin error'));
  process.stdin.resume();
}

// Read the endpoints back from our own discovery document rather than guessing the routes.
const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
process.stdout.write(`${JSON.stringify({
  issuer: discovery.issuer,
  jwks_uri: discovery.jwks_uri,
  token_endpoint: discovery.token_endpoint,
  introspection_endpoint: discovery.introspection_endpoint,
  revocation_endpoint: discovery.revocation_endpoint,
  port: actualPort,
  ...(mtls ? { mtls_token_endpoint: discovery.mtls_endpoint_aliases.token_endpoint } : {}),
})}\n`);
