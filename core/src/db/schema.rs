//! The account database's tables, created and upgraded by `PRAGMA user_version` migrations.
//!
//! Each entry of [`MIGRATIONS`] moves the schema from version `i` to `i + 1`; a released
//! migration is never edited, only followed by a new one.

/// The migrations, in order. openmls's own tables are created by
/// `kith_crypto::mls::run_migrations` on the same file and are not listed here.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the device, its keys, contacts, chats, messages, outbox and inbox state.
    r#"
    CREATE TABLE device (
        singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
        device_id     BLOB NOT NULL,
        address       TEXT NOT NULL,
        password      TEXT NOT NULL,
        relay         TEXT NOT NULL,          -- RelayEndpoint as JSON
        created_at    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE identity_key (
        singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
        secret        BLOB NOT NULL            -- IdentityKey::to_bytes
    ) STRICT;
    CREATE TABLE device_key (
        singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
        signing_secret BLOB NOT NULL,          -- DeviceSigningKey::to_bytes
        certificate   BLOB NOT NULL            -- DeviceCertificate::encode
    ) STRICT;
    CREATE TABLE contacts (
        id            INTEGER PRIMARY KEY,
        identity_key  BLOB NOT NULL UNIQUE,
        display_name  TEXT NOT NULL DEFAULT '',
        is_verified   INTEGER NOT NULL DEFAULT 0,
        added_at      INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE contact_devices (
        contact_id    INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
        device_id     BLOB NOT NULL,
        address       TEXT NOT NULL,
        certificate   BLOB NOT NULL,
        PRIMARY KEY (contact_id, device_id)
    ) STRICT;
    CREATE TABLE chats (
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
        group_id      BLOB UNIQUE,             -- the MLS group id
        name          TEXT NOT NULL DEFAULT '',
        created_at    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE messages (
        id            TEXT PRIMARY KEY,        -- the stable message id
        chat_id       INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        sender_identity BLOB NOT NULL,
        sender_device BLOB NOT NULL,
        content       BLOB NOT NULL,
        sent_at       INTEGER NOT NULL,
        received_at   INTEGER NOT NULL,
        state         TEXT NOT NULL
    ) STRICT;
    CREATE INDEX messages_by_chat ON messages (chat_id, sent_at);
    CREATE TABLE outbox (
        id            INTEGER PRIMARY KEY,
        envelope      BLOB NOT NULL,
        recipients    TEXT NOT NULL,           -- JSON array of addresses
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        last_error    TEXT
    ) STRICT;
    CREATE INDEX outbox_due ON outbox (next_attempt_at, id);
    CREATE TABLE inbox_cursor (
        singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
        uid_validity  INTEGER NOT NULL,
        last_uid      INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE processed_envelopes (
        message_id    TEXT PRIMARY KEY,
        processed_at  INTEGER NOT NULL
    ) STRICT;
    "#,
    // 2: the client's envelope key and the envelope keys of devices it seals Welcomes to.
    r#"
    CREATE TABLE envelope_key (
        singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
        secret        BLOB NOT NULL            -- DeviceKeypair::to_secret_bytes
    ) STRICT;
    CREATE TABLE peer_envelope_keys (
        address       TEXT PRIMARY KEY,        -- the device's delivery address
        public_key    BLOB NOT NULL,           -- DevicePublicKey::to_bytes
        learned_at    INTEGER NOT NULL
    ) STRICT;
    "#,
    // 3: the chunks of files (a file's message row appears once every chunk is here).
    r#"
    CREATE TABLE file_chunks (
        file_id       TEXT NOT NULL,           -- the file's message id (hex)
        idx           INTEGER NOT NULL,
        count         INTEGER NOT NULL,
        data          BLOB NOT NULL,
        PRIMARY KEY (file_id, idx)
    ) STRICT;
    "#,
    // 4: contacts: our pending invites, our joins waiting for a reply, and each contact
    // device's stock of KeyPackages.
    r#"
    CREATE TABLE invites (
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL CHECK (kind IN ('contact', 'group')),
        group_id      BLOB,                    -- group invites: the MLS group id
        invite_secret BLOB NOT NULL,           -- InviteSecret (16 bytes)
        channel_secret BLOB NOT NULL,          -- the inviter's ephemeral X25519 secret
        expires_at    INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        used_by       BLOB,                    -- the joiner's channel key once one joined
        used_at       INTEGER
    ) STRICT;
    CREATE TABLE joins (
        joiner_key    BLOB PRIMARY KEY,        -- our ephemeral X25519 public key
        channel_secret BLOB NOT NULL,          -- its secret; emptied once answered
        invite        BLOB NOT NULL,           -- InvitePayload::encode of the link
        state         TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
        created_at    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE contact_key_packages (
        id            INTEGER PRIMARY KEY,
        contact_id    INTEGER NOT NULL,
        device_id     BLOB NOT NULL,
        key_package   BLOB NOT NULL,           -- TLS-serialized KeyPackage
        is_last_resort INTEGER NOT NULL,
        received_at   INTEGER NOT NULL,
        FOREIGN KEY (contact_id, device_id)
            REFERENCES contact_devices (contact_id, device_id) ON DELETE CASCADE
    ) STRICT;
    CREATE INDEX contact_key_packages_by_device
        ON contact_key_packages (contact_id, device_id, is_last_resort, id);
    "#,
    // 5: deletions by target, so a stored message finds a deletion that arrived before it
    // with one lookup instead of a scan of every message (existing deletions backfilled).
    r#"
    CREATE TABLE message_deletions (
        target        TEXT NOT NULL,           -- the deleted message's id (hex)
        identity      BLOB NOT NULL,           -- who deleted it (only its sender may)
        PRIMARY KEY (target, identity)
    ) STRICT;
    INSERT OR IGNORE INTO message_deletions (target, identity)
        SELECT json_extract(CAST(content AS TEXT), '$.target'), sender_identity
        FROM messages
        WHERE json_valid(CAST(content AS TEXT))
          AND json_extract(CAST(content AS TEXT), '$.type') = 'delete';
    "#,
];
