#!/usr/bin/python3
"""A real SMTP server for socwatch's email tests (Debian's python3-aiosmtpd).

Binds 127.0.0.1 on a port the kernel picks and prints that port on stdout. Each received message is
parsed the way a mail client would (Python's email package, RFC 2047 decoded) and written as one
JSON file in OUT_DIR (written to a temporary name, then renamed, so a reader never sees half a
file). Exits when its stdin closes, so it cannot outlive the test that started it.

Modes: starttls (STARTTLS required before anything else, AUTH only after it), tls (TLS from the
first byte), none (plain).
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    def __init__(self, out_dir, refuse_until=None):
        self.out_dir = out_dir
        self.count = 0
        self.refuse_until = refuse_until

    async def handle_DATA(self, server, session, envelope):
        # A mail server that is having trouble: every message is deferred (a transient 4xx, to be
        # retried) until the test creates the file.
        if self.refuse_until and not os.path.exists(self.refuse_until):
            return "451 4.3.0 try again later"
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        plain = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "authenticated": bool(getattr(session, "authenticated", False)),
            "tls": session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
            "headers": [[name, str(value)] for name, value in message.items()],
            "subject": str(message["Subject"]),
            "content_type": message.get_content_type(),
            "text": plain.get_content() if plain is not None else None,
            "html": html.get_content() if html is not None else None,
            "raw": raw.decode("utf-8", "replace"),
        }
        self.count += 1
        name = os.path.join(self.out_dir, "%06d.json" % self.count)
        with open(name + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(name + ".tmp", name)
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["starttls", "tls", "none"], required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--out", required=True)
    parser.add_argument("--refuse-until")
    args = parser.parse_args()

    context = None
    if args.mode != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == args.user.encode()
            and auth_data.password == args.password.encode()
        )
        return AuthResult(success=ok, handled=False)

    recorder = Recorder(args.out, args.refuse_until)

    async def serve():
        loop = asyncio.get_running_loop()

        def factory():
            options = dict(hostname="localhost", loop=loop)
            if args.user:
                options["authenticator"] = authenticator
                options["auth_required"] = True
            if args.mode == "starttls":
                options.update(tls_context=context, require_starttls=True, auth_require_tls=True)
            else:
                # With TLS from the first byte aiosmtpd cannot tell the connection is encrypted.
                options["auth_require_tls"] = False
            return SMTP(recorder, **options)

        server = await loop.create_server(
            factory, "127.0.0.1", 0, ssl=context if args.mode == "tls" else None
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        stdin_closed = asyncio.Event()

        def watch_stdin():
            sys.stdin.read()
            loop.call_soon_threadsafe(stdin_closed.set)

        threading.Thread(target=watch_stdin, daemon=True).start()
        await stdin_closed.wait()
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
