"""MongoDB access: one module per collection, all opened here from `MONGODB_URI`."""
from __future__ import annotations

from dataclasses import dataclass, fields

from pymongo import MongoClient
from pymongo.database import Database

from webapp.db.bot_config import BotConfigs
from webapp.db.chatwoot_deliveries import ChatwootDeliveries
from webapp.db.chatwoot_sync import ChatwootSync
from webapp.db.console_sessions import ConsoleSessions
from webapp.db.conversations import Conversations
from webapp.db.dry_runs import DryRuns
from webapp.db.events import Events
from webapp.db.heartbeats import Heartbeats
from webapp.db.jobs import ReplyJobs
from webapp.db.leads import Leads
from webapp.db.messages import Messages
from webapp.db.sessions import Sessions
from webapp.db.stats_rollup import StatsRollup
from webapp.db.twilio_contents import TwilioContents

DEFAULT_DATABASE = "whatsapp_assistant"


@dataclass
class Store:
    client: MongoClient
    db: Database
    sessions: Sessions
    conversations: Conversations
    messages: Messages
    jobs: ReplyJobs
    heartbeats: Heartbeats
    stats_rollup: StatsRollup
    events: Events
    leads: Leads
    bot_config: BotConfigs
    chatwoot_sync: ChatwootSync
    chatwoot_deliveries: ChatwootDeliveries
    twilio_contents: TwilioContents
    console_sessions: ConsoleSessions
    dry_runs: DryRuns

    def ensure_indexes(self) -> None:
        for repository in self.repositories():
            repository.ensure_indexes()

    def repositories(self) -> list:
        """One per collection."""
        return [getattr(self, f.name) for f in fields(self) if f.name not in ("client", "db")]

    def close(self) -> None:
        self.client.close()


def open_store(uri: str, server_timeout_ms: int = 5000) -> Store:
    """Connect (lazily: pymongo connects on first use) and build the repositories."""
    client = MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=server_timeout_ms, connect=False)
    db = client.get_default_database(DEFAULT_DATABASE)
    return Store(client, db, Sessions(db), Conversations(db), Messages(db), ReplyJobs(db), Heartbeats(db),
                 StatsRollup(db), Events(db), Leads(db), BotConfigs(db), ChatwootSync(db),
                 ChatwootDeliveries(db), TwilioContents(db), ConsoleSessions(db), DryRuns(db))
