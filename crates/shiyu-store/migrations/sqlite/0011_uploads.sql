-- Who may attach a stored file: each user who uploaded it, and the holder of each receipt an upload without
-- sign-in was given (kept as the receipt's SHA-256). Content is stored once, so the attachments row, which
-- names only the first uploader, cannot say.
CREATE TABLE uploads (
    sha256 TEXT NOT NULL,
    holder TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (sha256, holder)
);

INSERT INTO uploads (sha256, holder, created_at)
    SELECT sha256, 'user:' || uploaded_by, created_at FROM attachments WHERE uploaded_by IS NOT NULL;
