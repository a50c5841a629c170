-- Checkout with reservation: while a buyer is in a Checkout Session that
-- soldout opened, that session holds the artwork and nobody else can start
-- paying for it.
--
-- One row per artwork that was ever reserved; a new claim overwrites the row
-- once it no longer holds. "Holds" depends on the time (held_until), which a
-- partial unique index cannot express, so the claim is a single conditional
-- upsert on the primary key (see ClaimReservation): the database, not the
-- application, decides between two buyers, on SQLite and on PostgreSQL, in
-- one process or across replicas.
CREATE TABLE reservations (
	artwork_id TEXT PRIMARY KEY,
	-- Random per claim: tells one claim of the artwork from the next, and
	-- the Stripe idempotency key is derived from it.
	claim_id   TEXT NOT NULL,
	session_id TEXT, -- the Checkout Session; NULL until Stripe answered
	state      TEXT NOT NULL,
	expires_at BIGINT NOT NULL, -- the session's expires_at, as sent to Stripe
	-- expires_at plus a grace period: past it the row holds nothing even if
	-- no event ever came, so correctness needs no sweeper.
	held_until BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	CONSTRAINT reservations_state CHECK (state IN ('open', 'converted', 'released', 'expired'))
);

-- Stripe's events name the session, not the claim. NULLs are distinct in
-- both databases, so claims still waiting for Stripe do not collide.
CREATE UNIQUE INDEX reservations_session ON reservations (session_id);
