"""Loopback push services speaking the real protocols, for the tests and `bench devices`.

- `WebPushService`: a Web Push endpoint (RFC 8030) that checks the VAPID Authorization header
  (ES256 JWT, `aud` = its own origin, signed by the `k` key), decrypts the aes128gcm payload
  with the subscription's private key (http_ece) and records it;
- `FcmService`: the OAuth2 token endpoint of a Google service account plus FCM HTTP v1
  `messages:send`, checking the signed assertion and the bearer token;
- `ApnsService`: an HTTP/2 (h2c, prior knowledge) APNs provider API checking the ES256
  provider token.

Each answers according to the token or endpoint id: ok, gone, rate-limited, server error.
None of this is used by the running console; real providers cannot exist on this machine.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from testing.servers import free_port


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ec_public_pem(raw_point: bytes) -> bytes:
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw_point)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# Behaviour is chosen by a marker in the device's address: the same markers for all services.
BEHAVIOURS = ("ok", "gone", "ratelimited", "servererror")


def behaviour_of(address: str) -> str:
    for name in BEHAVIOURS[1:]:
        if name in address:
            return name
    return "ok"


class _Threaded:
    """An http.server on a free loopback port, served from a daemon thread."""

    handler: type[BaseHTTPRequestHandler]

    def start(self, port: int | None = None) -> _Threaded:
        self.port = port or free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        service = self

        class Handler(self.handler):
            owner = service

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real push services

    def log_message(self, *args):
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, body: dict | None = None, headers: dict | None = None):
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# --- Web Push ---------------------------------------------------------------------------


class _WebPushHandler(_QuietHandler):
    owner: WebPushService

    def do_POST(self):
        service = self.owner
        body = self._body()
        sub_id = self.path.rsplit("/", 1)[-1]
        try:
            claims = service.check_vapid(self.headers.get("Authorization", ""))
            if self.headers.get("Content-Encoding") != "aes128gcm":
                raise PermissionError("Content-Encoding must be aes128gcm")
            if self.headers.get("TTL") is None:
                raise PermissionError("TTL header missing")
            private_key, auth = service.keys_for(sub_id)
            plain = http_ece.decrypt(
                body, private_key=private_key, auth_secret=auth, version="aes128gcm"
            )
        except Exception as exc:  # every refusal is recorded, answered 400/401
            with service.lock:
                service.refused.append({"id": sub_id, "error": f"{type(exc).__name__}: {exc}"})
            status = 401 if isinstance(exc, PermissionError | jwt.PyJWTError) else 400
            return self._answer(status, {"error": str(exc)})
        behaviour = behaviour_of(sub_id)
        with service.lock:
            service.count += 1
            if service.keep_records:
                service.received.append(
                    {
                        "id": sub_id,
                        "payload": json.loads(plain),
                        "claims": claims,
                        "behaviour": behaviour,
                    }
                )
        if behaviour == "gone":
            return self._answer(410, {"error": "subscription expired"})
        if behaviour == "ratelimited":
            return self._answer(429, {"error": "slow down"}, {"Retry-After": "120"})
        if behaviour == "servererror":
            return self._answer(503, {"error": "unavailable"})
        self.send_response(201)
        self.send_header("Location", f"{service.origin}/message/{service.count}")
        self.send_header("Content-Length", "0")
        self.end_headers()


class WebPushService(_Threaded):
    handler = _WebPushHandler

    def __init__(self, *, vapid_public_key: str | None = None, keep_records: bool = True):
        self.expected_key = vapid_public_key
        self.keep_records = keep_records
        self.origin = "http://127.0.0.1"  # until start() picks the port
        self.lock = threading.Lock()
        self.received: list[dict] = []
        self.refused: list[dict] = []
        self.count = 0
        self._keys: dict[str, tuple] = {}
        self._shared = self._new_keys()

    @staticmethod
    def _new_keys() -> tuple:
        return ec.generate_private_key(ec.SECP256R1()), os.urandom(16)

    def keys_for(self, sub_id: str) -> tuple:
        return self._keys.get(sub_id, self._shared)

    def subscription(self, sub_id: str, *, own_keys: bool = True) -> dict:
        """A PushSubscription.toJSON() for endpoint /push/<sub_id>, as a browser makes it.
        own_keys=False shares one key pair among many subscriptions (cheap, for the bench)."""
        keys = self._new_keys() if own_keys else self._shared
        if own_keys:
            self._keys[sub_id] = keys
        private_key, auth = keys
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.origin}/push/{sub_id}",
            "keys": {"p256dh": b64url(point), "auth": b64url(auth)},
        }

    def check_vapid(self, header: str) -> dict:
        """RFC 8292: `vapid t=<JWT>, k=<public key>`; the JWT is ES256 over the k key, its
        aud is this service's origin, exp within 24 hours, sub a contact."""
        if not header.startswith("vapid "):
            raise PermissionError("Authorization is not a vapid header")
        params = dict(
            part.strip().split("=", 1) for part in header.removeprefix("vapid ").split(",")
        )
        if self.expected_key and params.get("k") != self.expected_key:
            raise PermissionError("k is not the application server key")
        public_pem = _ec_public_pem(b64url_decode(params["k"]))
        claims = jwt.decode(
            params["t"],
            public_pem,
            algorithms=["ES256"],
            audience=self.origin,
            options={"require": ["exp", "aud", "sub"]},
        )
        if claims["exp"] > time.time() + 24 * 3600:
            raise PermissionError("exp more than 24 hours ahead")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            raise PermissionError("sub is not a mailto: or https: contact")
        return claims


# --- FCM HTTP v1 --------------------------------------------------------------------------


class _FcmHandler(_QuietHandler):
    owner: FcmService

    def do_POST(self):
        service = self.owner
        body = self._body()
        if self.path == "/token":
            return self._token(body.decode())
        if not self.path.endswith(f"/v1/projects/{service.project_id}/messages:send"):
            return self._answer(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
        if self.headers.get("Authorization") != f"Bearer {service.access_token}":
            return self._answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
        message = json.loads(body)["message"]
        token = message["token"]
        behaviour = "invalid" if "invalid" in token else behaviour_of(token)
        with service.lock:
            service.received.append({"token": token, "message": message, "behaviour": behaviour})
        if behaviour == "gone":
            return self._answer(
                404, _fcm_error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
            )
        if behaviour == "invalid":
            return self._answer(
                400,
                _fcm_error(
                    400,
                    "INVALID_ARGUMENT",
                    "INVALID_ARGUMENT",
                    "The registration token is not a valid FCM registration token",
                ),
            )
        if behaviour == "ratelimited":
            return self._answer(
                429,
                _fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded"),
                {"Retry-After": "90"},
            )
        if behaviour == "servererror":
            return self._answer(503, _fcm_error(503, "UNAVAILABLE", "UNAVAILABLE", "try later"))
        return self._answer(200, {"name": f"projects/{service.project_id}/messages/{len(token)}"})

    def _token(self, form: str):
        from urllib.parse import parse_qs

        fields = {k: v[0] for k, v in parse_qs(form).items()}
        service = self.owner
        try:
            if fields.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                raise PermissionError("grant_type")
            claims = jwt.decode(
                fields["assertion"],
                service.public_pem,
                algorithms=["RS256"],
                # google-auth signs for Google's token endpoint whatever token_uri it posts to.
                audience="https://oauth2.googleapis.com/token",
            )
            if "firebase.messaging" not in claims.get("scope", ""):
                raise PermissionError("scope")
        except (KeyError, PermissionError, jwt.PyJWTError) as exc:
            return self._answer(400, {"error": "invalid_grant", "error_description": str(exc)})
        with service.lock:
            service.token_requests += 1
        return self._answer(
            200, {"access_token": service.access_token, "expires_in": 3600, "token_type": "Bearer"}
        )


def _fcm_error(code: int, status: str, error_code: str, message: str) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "status": status,
            "details": [
                {
                    "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                    "errorCode": error_code,
                }
            ],
        }
    }


class FcmService(_Threaded):
    handler = _FcmHandler

    def __init__(self, project_id: str = "b2v-loopback"):
        self.project_id = project_id
        self.lock = threading.Lock()
        self.received: list[dict] = []
        self.token_requests = 0
        self.access_token = b64url(os.urandom(24))
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def service_account(self) -> dict:
        """A service-account JSON as Google issues it, whose token_uri is this service."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "loopback",
            "private_key": pem,
            "client_email": f"push@{self.project_id}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.origin}/token",
        }


# --- APNs over HTTP/2 -------------------------------------------------------------------


class ApnsService:
    """APNs provider API over h2c. Tokens choose the answer: a token containing `0bad` is
    BadDeviceToken (400), `0410` Unregistered (410), `0429` TooManyRequests, `0500` an error."""

    def __init__(self, *, team_id: str = "TEAM123456", key_id: str = "KEY1234567"):
        self.team_id, self.key_id = team_id, key_id
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.lock = threading.Lock()
        self.received: list[dict] = []
        self.refused: list[str] = []

    def signing_key_pem(self) -> str:
        """The .p8 key Apple hands out for token auth (PKCS#8 PEM, P-256)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def start(self) -> ApnsService:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, "127.0.0.1", self.port)
            )
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, reader, writer):
        from h2.config import H2Configuration
        from h2.connection import H2Connection
        from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded

        conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, dict] = {}
        try:
            while data := await reader.read(65535):
                for event in conn.receive_data(data):
                    if isinstance(event, RequestReceived):
                        streams[event.stream_id] = {"headers": dict(event.headers), "body": b""}
                    elif isinstance(event, DataReceived):
                        streams[event.stream_id]["body"] += event.data
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, StreamEnded):
                        status, body = self._respond(streams.pop(event.stream_id))
                        payload = json.dumps(body).encode() if body else b""
                        headers = [(":status", str(status)), ("apns-id", "loopback")]
                        if status == 429:
                            headers.append(("retry-after", "60"))
                        headers.append(("content-length", str(len(payload))))
                        conn.send_headers(event.stream_id, headers, end_stream=not payload)
                        if payload:
                            conn.send_data(event.stream_id, payload, end_stream=True)
                    elif isinstance(event, ConnectionTerminated):
                        return
                writer.write(conn.data_to_send())
                await writer.drain()
        finally:
            writer.close()

    def _respond(self, request: dict) -> tuple[int, dict | None]:
        headers = request["headers"]
        path = headers.get(":path", "")
        if headers.get(":method") != "POST" or not path.startswith("/3/device/"):
            return 404, {"reason": "BadPath"}
        try:
            token = headers.get("authorization", "").removeprefix("bearer ")
            if jwt.get_unverified_header(token).get("kid") != self.key_id:
                return 403, {"reason": "InvalidProviderToken"}
            claims = jwt.decode(token, self._key.public_key(), algorithms=["ES256"])
            if claims.get("iss") != self.team_id:
                return 403, {"reason": "InvalidProviderToken"}
        except jwt.PyJWTError:
            return 403, {"reason": "InvalidProviderToken"}
        if not headers.get("apns-topic"):
            return 400, {"reason": "MissingTopic"}
        device = path.removeprefix("/3/device/")
        with self.lock:
            self.received.append(
                {"token": device, "headers": headers, "payload": json.loads(request["body"])}
            )
        if device.startswith("0bad"):
            return 400, {"reason": "BadDeviceToken"}
        if device.startswith("0410"):
            return 410, {"reason": "Unregistered", "timestamp": int(time.time() * 1000)}
        if device.startswith("0429"):
            return 429, {"reason": "TooManyRequests"}
        if device.startswith("0500"):
            return 500, {"reason": "InternalServerError"}
        return 200, None
