-- A post whose holder died while publishing is looked for on the account before anyone decides
-- (issue 14): claimed_at is when the platform was called (the search starts a minute before it),
-- checks how many times the platform could not be asked; after five, the post is "unknown".
ALTER TABLE announcement_posts ADD COLUMN claimed_at TIMESTAMPTZ;
ALTER TABLE announcement_posts ADD COLUMN checks BIGINT NOT NULL DEFAULT 0;
