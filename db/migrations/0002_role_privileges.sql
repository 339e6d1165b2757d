-- depends: 0001_lottery_core
-- Least privilege. Tables stay private to the owner; the group roles get:
--   lottery_web     EXECUTE on the API functions (granted next to each function)
--   lottery_bi      SELECT on the analytics views (granted next to each view)
--   lottery_ingest  INSERT (and so COPY) into mining_events, nothing else;
--                   the aggregate trigger runs as the owner (SECURITY DEFINER).
GRANT USAGE ON SCHEMA public TO lottery_web, lottery_bi, lottery_ingest;
GRANT INSERT ON mining_events TO lottery_ingest;
