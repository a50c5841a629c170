-- The schema is shared by SQLite and PostgreSQL, so it sticks to what both
-- accept. Times are integer unix milliseconds (0 for "not set"): portable,
-- compact and indexable. Lists are JSON arrays of strings.

CREATE TABLE events (
	id             TEXT PRIMARY KEY,
	type           TEXT NOT NULL,
	created        BIGINT NOT NULL,
	livemode       BOOLEAN NOT NULL,
	session_id     TEXT NOT NULL,
	artwork_ids    TEXT NOT NULL,
	first_received BIGINT NOT NULL,
	last_received  BIGINT NOT NULL,
	attempts       INTEGER NOT NULL,
	outcome        TEXT NOT NULL, -- '' until processing finished
	detail         TEXT NOT NULL,
	last_error     TEXT NOT NULL,
	finished_at    BIGINT NOT NULL,
	payload        TEXT NOT NULL
);

-- Listings are newest first, optionally since a time; id breaks ties so that
-- the order is stable.
CREATE INDEX events_first_received ON events (first_received, id);
-- "Which events failed?" without scanning every event.
CREATE INDEX events_outcome ON events (outcome, first_received, id);

-- One row per artwork an event names, written with the event's first
-- delivery. The primary key doubles as the index behind "events of artwork X,
-- newest first": a range scan that stops after the limit.
CREATE TABLE event_artworks (
	artwork_id     TEXT NOT NULL,
	first_received BIGINT NOT NULL,
	event_id       TEXT NOT NULL REFERENCES events (id),
	PRIMARY KEY (artwork_id, first_received, event_id)
);

CREATE TABLE sales (
	artwork_id  TEXT NOT NULL,
	session_id  TEXT NOT NULL,
	state       TEXT NOT NULL,
	email       TEXT NOT NULL,
	amount      BIGINT NOT NULL,
	currency    TEXT NOT NULL,
	event_ids   TEXT NOT NULL,
	applied_rev TEXT NOT NULL,
	lease_owner TEXT NOT NULL,
	lease_until BIGINT NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	version     BIGINT NOT NULL,
	CONSTRAINT sales_pkey PRIMARY KEY (artwork_id, session_id),
	-- A misspelt state would slip past sales_one_active below.
	CONSTRAINT sales_state CHECK (state IN ('held', 'sold', 'released', 'double_sale'))
);

-- sales_one_active is what decides two buyers racing for one artwork, even
-- across replicas: the database lets at most one held or sold row exist per
-- artwork, so of two concurrent inserts (or updates) making a sale active,
-- exactly one commits and the other fails with a unique violation, which the
-- journal reports as stock.ErrSaleTaken. No read-then-write in the
-- application can give that guarantee. The journal recognises the violation
-- by this index's name; keep it.
CREATE UNIQUE INDEX sales_one_active ON sales (artwork_id) WHERE state IN ('held', 'sold');

CREATE INDEX sales_session ON sales (session_id);
