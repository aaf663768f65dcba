"""A mail server for the tests: aiosmtpd over STARTTLS or implicit TLS that takes mail only
after AUTH with one user name and password, saving it into a Maildir.

Usage: smtp_tls.py HOST PORT MAILDIR starttls|tls CERT KEY USER PASSWORD
"""

import asyncio
import ssl
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

host, port, maildir, mode, cert, key, user, password = sys.argv[1:9]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
starttls = mode == "starttls"


def authenticate(server, session, envelope, mechanism, data):
    ok = (
        isinstance(data, LoginPassword)
        and data.login == user.encode()
        and data.password == password.encode()
    )
    # Not handled: aiosmtpd itself answers 535 to a failure.
    return AuthResult(success=ok, handled=False)


def session():
    # With STARTTLS, AUTH is offered only once the connection is encrypted, so a client that
    # sent the password in the clear could not log in; with implicit TLS it always is.
    return SMTP(
        Mailbox(maildir),
        tls_context=context if starttls else None,
        require_starttls=starttls,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=starttls,
    )


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        session, host, int(port), ssl=None if starttls else context
    )
    async with server:
        await server.serve_forever()


asyncio.run(main())
