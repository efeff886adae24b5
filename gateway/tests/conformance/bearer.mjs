// Preloaded into the conformance suite (`node --import ./bearer.mjs`) by tests/conformance.rs.
//
// The suite's server scenarios have no option for credentials: its clients (the TypeScript
// SDK's transport, `fetch` and undici's `request`) send none. mcp-auth-gateway refuses every
// request without them (401), as it must, so this hook gives the suite a static bearer token the
// way an HTTP client library would: undici's global dispatcher, which Node's `fetch` and
// undici's `request` both use, adds `Authorization: Bearer $CONFORMANCE_BEARER` to requests to
// $CONFORMANCE_ORIGIN (the gateway under test) and to no other origin. Nothing else changes:
// headers the suite sets on purpose (a forged `Host` or `Origin`) are sent as they are.
import { Agent, setGlobalDispatcher } from "undici";

const token = process.env.CONFORMANCE_BEARER;
const origin = process.env.CONFORMANCE_ORIGIN;
if (!token || !origin) {
  throw new Error("bearer.mjs needs CONFORMANCE_BEARER and CONFORMANCE_ORIGIN");
}
const value = `Bearer ${token}`;

// undici passes headers as an object, a flat [name, value, ...] array or an iterable of pairs.
function withAuthorization(headers) {
  if (headers == null) return { authorization: value };
  if (Array.isArray(headers)) return [...headers, "authorization", value];
  if (typeof headers[Symbol.iterator] === "function") {
    return [...Array.from(headers).flat(), "authorization", value];
  }
  return { ...headers, authorization: value };
}

setGlobalDispatcher(
  new Agent().compose((dispatch) => (opts, handler) => {
    const target = typeof opts.origin === "string" ? opts.origin : opts.origin?.origin;
    if (target === origin) {
      return dispatch({ ...opts, headers: withAuthorization(opts.headers) }, handler);
    }
    return dispatch(opts, handler);
  }),
);
