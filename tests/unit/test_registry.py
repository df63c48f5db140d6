from __future__ import annotations

import pytest

from bot.errors import UserInputError
from bot.registry import CustomerRegistry
from commands.models import CustomerRef

REG = CustomerRegistry(
    [CustomerRef(name="hilton", cluster="voice-prod"), CustomerRef(name="spirit", cluster="chat-prod"),
     CustomerRef(name="united-east", cluster="voice-prod")],
    ["chat-prod", "voice-prod"],
)


def test_unknown_customer_suggests_the_closest_name() -> None:
    with pytest.raises(UserInputError) as info:
        REG.resolve(("hiltonn",))
    assert "unknown customer: hiltonn (did you mean hilton?)" in info.value.reply()


def test_all_and_lists() -> None:
    assert [c.name for c in REG.resolve(None)] == ["hilton", "spirit", "united-east"]
    assert REG.resolve(("spirit",))[0].cluster == "chat-prod"


def test_unknown_cluster_lists_known_ones() -> None:
    with pytest.raises(UserInputError, match="known clusters: chat-prod, voice-prod"):
        REG.check_clusters(("eu-prod",))
