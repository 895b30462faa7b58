-- A post published by finding it on the account after its process died mid-publish, rather than
-- by the platform's answer to our call: the list and the inbox say so, so a comms officer can
-- tell the two apart (issue 14).
ALTER TABLE announcement_posts ADD COLUMN found_by_check BOOLEAN NOT NULL DEFAULT false;
