-- A post published by finding it on the account after its process died mid-publish, rather than
-- by the platform's answer to our call: the list and the inbox say so, so a comms officer can
-- tell the two apart (issue 14).
ALTER TABLE announcement_posts ADD COLUMN found_by_check INTEGER NOT NULL DEFAULT 0;
-- Those found before this column existed: the log says so ("published", "found on the account
-- by a check after the server stopped: <link>").
UPDATE announcement_posts SET found_by_check = 1
WHERE state = 'published' AND EXISTS (
    SELECT 1 FROM announcement_log l
    WHERE l.announcement_id = announcement_posts.announcement_id
        AND l.channel = announcement_posts.channel AND l.action = 'published'
        AND l.detail LIKE 'found on the account by a check%');
