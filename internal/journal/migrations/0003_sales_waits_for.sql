-- A double sale names the sale it lost to: the winner's session, or, when
-- the journal held no active sale (a buyer kept waiting after a failed
-- hold), the soldout revision found in Sanity, whose id names that sale. A
-- failed hold keeps its piece unavailable exactly for the buyers waiting
-- for it.
ALTER TABLE sales ADD COLUMN waits_for TEXT NOT NULL DEFAULT '';
