"""A lost API secret is recovered by starting with MEDIAHOOKS_API_SECRET set: the given secret
opens the first account from then on, and the lost one no longer does. Both databases."""

from __future__ import annotations

from support.server import API_SECRET, ApiFactory


async def test_starting_with_a_new_secret_replaces_the_lost_one(api_factory: ApiFactory) -> None:
    first = await api_factory(dispatch=False)
    await first.webhook("https://1.1.1.1/hooks")
    account = first.service.account_id

    again = await api_factory(dispatch=False, api_secret="a-secret-chosen-after-losing-it")
    assert again.service.account_id == account  # the same account, its webhooks intact
    new = {"Authorization": "Bearer a-secret-chosen-after-losing-it"}
    listed = await again.ok("GET", "/api/webhooks/list", headers=new)
    assert [hook["url"] for hook in listed] == ["https://1.1.1.1/hooks"]
    old = {"Authorization": f"Bearer {API_SECRET}"}
    status, body = await again.call("GET", "/api/webhooks/list", headers=old)
    assert status == 401 and body["status"] == "fail"
