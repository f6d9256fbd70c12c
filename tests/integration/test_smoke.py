from support.receiver import Receiver
from support.server import Api


async def test_test_event_reaches_a_webhook(api: Api, receiver: Receiver) -> None:
    hook = await api.webhook(receiver.url + "/hook")
    sent = await api.send_test("Media")
    assert sent["webhookIds"] == [hook["id"]]
    (got,) = await receiver.wait_for(1, "/hook")
    assert got.headers["webhook-id"] == sent["messageId"]
