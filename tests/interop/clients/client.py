"""A real MCP client (the Python SDK, `mcp` 2.3) driven headlessly by mcp-server-auth's interop
tests (tests/interop_clients.rs). The TypeScript twin is client.mjs: same arguments, same output.

    python client.py --url URL [--flow client_credentials|auth_code|static|none]
                     [--scope "mcp:read"] [--issuer ISSUER]
                     [--client-id ID --client-secret SECRET] [--header "Name: value"]...
                     [--steps JSON]

--flow client_credentials  ClientCredentialsOAuthProvider with --client-id/--client-secret
                           (default mcp-test-client / mcp-test-secret) and --scope
--flow auth_code           OAuthClientProvider (authorization code + PKCE) that registers itself
                           (RFC 7591) unless --client-id is given; its redirect_handler follows
                           the authorization server's redirects (keeping cookies) instead of
                           opening a browser, and its callback_handler hands back the code
--flow static | none       no auth provider; --header adds fixed request headers
--steps                    a JSON list run in order after connecting, each one of
                           {"call":"tools/list"}, {"call":"TOOL","args":{...}}, {"sleep_ms":N}

It prints ONE JSON line on stdout and exits 0 even when the connection or a step fails (the Rust
test asserts on the JSON); exit 2 means bad arguments. The exchanges the SDK made (recorded with
httpx event hooks) are listed under "http", in the format client.mjs uses. Secrets (tokens,
client secrets, codes, verifiers) are never printed: for token requests only grant_type,
resource and scope are recorded. Diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import traceback
import warnings
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

REDIRECT_URI = "http://127.0.0.1/callback"
FLOWS = ("client_credentials", "auth_code", "static", "none")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--flow", default="none", choices=FLOWS)
    parser.add_argument("--scope")
    parser.add_argument("--issuer")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--steps", default='[{"call":"tools/list"}]')
    args = parser.parse_args()
    try:
        args.steps = json.loads(args.steps)
        if not isinstance(args.steps, list):
            raise ValueError("not a list")
    except ValueError as e:
        parser.error(f"--steps must be a JSON list: {e}")
    headers = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            parser.error(f'--header must be "Name: value", got {h!r}')
        headers[name.strip()] = value.strip()
    args.headers = headers
    return args


ARGS = parse_args()
SERVER = urlsplit(ARGS.url)

# ------------------------------------------------------------------------------------------------
# Every HTTP exchange the SDK makes goes through the httpx client's event hooks, and is recorded.

exchanges: list[dict[str, Any]] = []


def kind_of(url: str, method: str, params: dict[str, list[str]] | None) -> str:
    u = urlsplit(url)
    if (u.scheme, u.netloc, u.path) == (SERVER.scheme, SERVER.netloc, SERVER.path):
        return "mcp"
    if u.path.startswith("/.well-known/oauth-protected-resource"):
        return "prm"
    if u.path.startswith(("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")):
        return "as_metadata"
    if params is not None and "grant_type" in params:
        return "token"
    if method == "POST" and u.path.rstrip("/").rsplit("/", 1)[-1] in ("reg", "register", "registration"):
        return "register"
    return "other"


async def on_request(request: httpx2.Request) -> None:
    params = None
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        params = parse_qs(request.content.decode(), keep_blank_values=True)
    url = str(request.url)
    entry: dict[str, Any] = {"method": request.method, "url": url, "kind": kind_of(url, request.method, params)}
    if params is not None:
        for name in ("grant_type", "resource", "scope"):
            if name in params:
                entry[name] = " ".join(params[name])
    if entry["kind"] == "mcp" and request.method == "POST":
        try:
            entry["rpc"] = json.loads(request.content).get("method")
        except (ValueError, AttributeError):
            pass
    request.extensions["interop_entry"] = entry
    exchanges.append(entry)


async def on_response(response: httpx2.Response) -> None:
    entry = response.request.extensions.get("interop_entry")
    if entry is None:
        return
    entry["status"] = response.status_code
    challenge = response.headers.get("www-authenticate")
    if challenge is not None:
        entry["www_authenticate"] = challenge


# ------------------------------------------------------------------------------------------------
# The authorization-code flow without a browser.


class MemoryStorage:
    """The SDK's TokenStorage, in memory."""

    def __init__(self, client_info: OAuthClientInformationFull | None = None) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info = client_info

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class HeadlessBrowser:
    """Follows the authorization server's redirects, keeping cookies, up to the redirect URI."""

    def __init__(self) -> None:
        self.result: AuthorizationCodeResult | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.result = None
        url = authorization_url
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10.0, trust_env=False) as http:
            for _ in range(15):
                entry: dict[str, Any] = {"method": "GET", "url": url.split("?")[0], "kind": "authorize"}
                query = parse_qs(urlsplit(url).query)
                for name in ("resource", "scope", "code_challenge_method"):
                    if name in query:
                        entry[name] = " ".join(query[name])
                exchanges.append(entry)
                response = await http.get(url)
                entry["status"] = response.status_code
                location = response.headers.get("location")
                if not response.is_redirect or location is None:
                    raise RuntimeError(
                        f"authorization stopped at {url.split('?')[0]}: HTTP {response.status_code}: "
                        f"{response.text[:300]}"
                    )
                target = urljoin(url, location)
                if target.startswith(REDIRECT_URI + "?"):
                    query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
                    if "error" in query:
                        raise RuntimeError(
                            f"authorization refused: {query['error']} {query.get('error_description', '')}".strip()
                        )
                    self.result = AuthorizationCodeResult(
                        code=query["code"], state=query.get("state"), iss=query.get("iss")
                    )
                    return
                url = target
        raise RuntimeError("authorization: too many redirects")

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("authorization: no code was received")
        result, self.result = self.result, None
        return result


def auth_provider() -> httpx2.Auth | None:
    if ARGS.flow == "client_credentials":
        return ClientCredentialsOAuthProvider(
            server_url=ARGS.url,
            storage=MemoryStorage(),
            client_id=ARGS.client_id or "mcp-test-client",
            client_secret=ARGS.client_secret or "mcp-test-secret",
            scope=ARGS.scope,
            issuer=ARGS.issuer,
        )
    if ARGS.flow == "auth_code":
        client_info = None
        if ARGS.client_id:
            client_info = OAuthClientInformationFull(
                client_id=ARGS.client_id,
                client_secret=ARGS.client_secret,
                redirect_uris=[REDIRECT_URI],
                token_endpoint_auth_method="client_secret_basic" if ARGS.client_secret else "none",
                issuer=ARGS.issuer,
            )
        browser = HeadlessBrowser()
        return OAuthClientProvider(
            server_url=ARGS.url,
            client_metadata=OAuthClientMetadata(
                client_name="mcp-server-auth interop (Python SDK)",
                redirect_uris=[REDIRECT_URI],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
                scope=ARGS.scope,
            ),
            storage=MemoryStorage(client_info),
            redirect_handler=browser.redirect_handler,
            callback_handler=browser.callback_handler,
        )
    return None


# ------------------------------------------------------------------------------------------------


def leaves(e: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(e, BaseExceptionGroup):
        return [leaf for inner in e.exceptions for leaf in leaves(inner)]
    return [e]


def error_info(e: BaseException) -> dict[str, Any]:
    errors = leaves(e)
    info: dict[str, Any] = {
        "ok": False,
        "error": "; ".join(f"{type(x).__name__}: {x}" for x in errors),
    }
    for x in errors:
        # An HTTP status, wherever the SDK put it: on the exception or on a cause.
        while x is not None:
            response = getattr(x, "response", None)
            status = getattr(response, "status_code", None) or getattr(x, "status_code", None)
            if isinstance(status, int):
                info["status"] = status
                return info
            x = x.__cause__ or x.__context__
    return info


def result_text(result: Any) -> str:
    return "\n".join(c.text for c in getattr(result, "content", []) if getattr(c, "type", None) == "text")


async def run_steps(client: Client, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    for index, step in enumerate(steps):
        # Marks where each step's exchanges begin.
        exchanges.append({"kind": "step", "index": index, **{k: v for k, v in step.items() if k != "args"}})
        if isinstance(step.get("sleep_ms"), int):
            await asyncio.sleep(step["sleep_ms"] / 1000)
            records.append({"sleep_ms": step["sleep_ms"], "ok": True})
            continue
        record: dict[str, Any] = {"call": step.get("call")}
        try:
            if step.get("call") == "tools/list":
                result = await client.list_tools()
                record["ok"] = True
                record["tools"] = [t.name for t in result.tools]
            else:
                result = await client.call_tool(step["call"], step.get("args") or {})
                record["ok"] = not result.is_error
                record["text"] = result_text(result)
                if result.is_error:
                    record["error"] = f"tool error: {record['text']}"
        except asyncio.CancelledError as e:
            # The transport's task group failed (for example its OAuth flow raised) and cancelled
            # this call: the session is over. The cause comes out when the client is closed.
            record.update({"ok": False, "error": "cancelled: the client's transport failed"})
            print(f"step {step.get('call')} cancelled: {e!r}", file=sys.stderr)
            records.append(record)
            break
        except Exception as e:  # noqa: BLE001 - every failure is a result
            record.update(error_info(e))
            print(f"step {step.get('call')} failed:", file=sys.stderr)
            traceback.print_exception(e, file=sys.stderr)
        records.append(record)
    return records


async def main() -> dict[str, Any]:
    output: dict[str, Any] = {"sdk": "python", "connect": None, "steps": [], "http": exchanges}
    http = httpx2.AsyncClient(
        auth=auth_provider(),
        headers=ARGS.headers,
        timeout=httpx2.Timeout(15.0, read=30.0),
        trust_env=False,
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    try:
        async with http:
            client = Client(streamable_http_client(ARGS.url, http_client=http), cache=None)
            try:
                await client.__aenter__()
            except BaseException as e:  # noqa: BLE001
                output["connect"] = error_info(e)
                print("connect failed:", file=sys.stderr)
                traceback.print_exception(e, file=sys.stderr)
                return output
            output["connect"] = {"ok": True}
            output["steps"] = await run_steps(client, ARGS.steps)
            try:
                await client.__aexit__(None, None, None)
            except BaseException as e:  # noqa: BLE001 - reported, not raised
                print("closing failed:", file=sys.stderr)
                traceback.print_exception(e, file=sys.stderr)
                failure = error_info(e)
                output["close_error"] = failure
                # A step cancelled by the transport's failure gets that failure as its error.
                last = output["steps"][-1] if output["steps"] else None
                if last is not None and str(last.get("error", "")).startswith("cancelled"):
                    last.update(failure)
    except BaseException as e:  # noqa: BLE001 - every failure is a result
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        if output["connect"] is None:
            output["connect"] = error_info(e)
        else:
            output["close_error"] = error_info(e)
        print("client failed:", file=sys.stderr)
        traceback.print_exception(e, file=sys.stderr)
    return output


if __name__ == "__main__":
    # Diagnostics (the SDK's logs and deprecation warnings) on stderr only.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    warnings.simplefilter("default")
    result = asyncio.run(main())
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.exit(0)
