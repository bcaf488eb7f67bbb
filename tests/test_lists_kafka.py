"""Named lists through Kafka (real broker, real Redis): the admin API publishes list events,
the consumer applies them, and a rebuild from the topic repeats lists, entries, assignments."""

from __future__ import annotations

import uuid

import aiohttp
import redis.asyncio as aioredis

from proxy.settings import Settings
from rules.model import tenant_of
from tests.harness import eventually, fake_upstream, running_proxy, until_ready
from tests.test_lists import JANE, TOKEN, admin, assign, campaign_rule, jane_shown, new_list
from tests.test_suppression import key


async def test_admin_api_publishes_and_a_rebuild_repeats_lists(flushable_redis_url,
                                                               kafka_bootstrap):
    topic = f"lists-{uuid.uuid4().hex[:8]}"
    mine, other = key(), key()
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=flushable_redis_url, kafka=kafka_bootstrap,
                            topic=topic, group=f"g-{topic}", admin_token=TOKEN)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            await until_ready(client, proxy)
            kept = await new_list(client, proxy, JANE)  # each call answered once applied
            await assign(client, proxy, kept, mine)
            dropped = await new_list(client, proxy, JANE)
            await assign(client, proxy, dropped, other)
            assert not await jane_shown(client, proxy, mine)
            assert not await jane_shown(client, proxy, other)
            assert (await admin(client, proxy, "DELETE", f"/lists/{dropped}"))[0] == 204
            assert await jane_shown(client, proxy, other)
            await campaign_rule(client, proxy, other, "q1", JANE)  # a v3 event, then applied
            assert not await jane_shown(client, proxy, other, "q1")
            before = await admin(client, proxy, "GET", f"/lists/{kept}")
            assert before[0] == 200 and before[1]["entry_count"] == 1

            redis = aioredis.from_url(flushable_redis_url)
            await redis.flushall()
            await redis.aclose()

            async def rebuilt() -> bool:  # other tests' lists share this Redis: ours only
                return await admin(client, proxy, "GET", f"/lists/{kept}") == before

            await eventually(rebuilt, "the rebuild to repeat the lists", timeout=60)
            await until_ready(client, proxy, "the store to be ready again", timeout=60)
            held = (await admin(client, proxy, "GET", f"/tenants/{tenant_of(mine)}/lists"))[1]
            assert [item["id"] for item in held["data"]] == [kept]
            assert (await admin(client, proxy, "GET", f"/lists/{dropped}"))[0] == 404
            assert not await jane_shown(client, proxy, mine)
            assert await jane_shown(client, proxy, other)
            assert not await jane_shown(client, proxy, other, "q1")
