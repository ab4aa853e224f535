"""Drives the relay's IMAP server with Python's standard imaplib.

Usage: imaplib_client.py HOST PORT ADDRESS PASSWORD
Prints what it saw; exits non-zero on any protocol error.
"""
import imaplib
import ssl
import sys


def main():
    host, port, address, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    context = ssl.create_default_context()
    # The test relay's certificate is self-signed.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    imap = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=20)
    print("capabilities:", " ".join(imap.capabilities))
    assert "IDLE" in imap.capabilities, imap.capabilities
    typ, _ = imap.login(address, password)
    assert typ == "OK", typ
    typ, folders = imap.list()
    assert typ == "OK" and any(b"INBOX" in f for f in folders), folders
    typ, data = imap.select("INBOX")
    assert typ == "OK" and data == [b"1"], (typ, data)
    typ, data = imap.search(None, "ALL")
    assert typ == "OK" and data == [b"1"], (typ, data)
    typ, data = imap.fetch("1", "(RFC822)")
    assert typ == "OK", typ
    print("fetched:", data[0][1].decode())
    typ, data = imap.uid("FETCH", "1", "(FLAGS)")
    assert typ == "OK" and b"\\Seen" in data[0], data
    typ, data = imap.store("1", "+FLAGS", "\\Deleted")
    assert typ == "OK", (typ, data)
    typ, data = imap.expunge()
    assert typ == "OK", typ
    print("expunged:", data[0].decode())
    typ, data = imap.noop()
    assert typ == "OK", typ
    imap.close()
    imap.logout()


if __name__ == "__main__":
    main()
