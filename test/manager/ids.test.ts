// ObjectId layout: 24 hex, seconds first, a per-process random middle, an increasing counter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { newObjectId, OBJECT_ID_RE, objectIdTime } from "../../src/manager/ids.js";

test("ids are 24 hex chars carrying their second, unique and increasing within a second", () => {
  const now = Date.parse("2024-05-06T07:08:09.500Z");
  const ids = Array.from({ length: 10_000 }, () => newObjectId(now));
  for (const id of ids) assert.match(id, OBJECT_ID_RE);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(objectIdTime(ids[0]!), Date.parse("2024-05-06T07:08:09Z"));
  assert.equal(ids[0]!.slice(8, 18), ids[9999]!.slice(8, 18), "same random middle in one process");
  const wraps = ids.filter((id, i) => i > 0 && id < ids[i - 1]!).length;
  assert.ok(wraps <= 1, "increasing except for at most one counter wrap");
  assert.ok(newObjectId(now + 1000) > ids[0]!);
  assert.doesNotMatch("0123456789abcdef0123456G", OBJECT_ID_RE);
});
