-- What a soldout server knows about the shop and every command on the same
-- journal must agree with, whatever the shell it runs from: the Stripe mode
-- (test or live), so that a replay cannot apply an event the server refused
-- as of the other mode.
CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
