//! The pure core of notification-service: preferences, the events it
//! receives, and the decision function from (event, preferences, now) to
//! actions, plus how notifications read. No tonic, prost or sled here.

mod decide;
mod event;
mod prefs;
mod render;

pub use decide::{Action, Settings, decide};
pub use event::{Event, EventKind, Item};
pub use prefs::{Delivery, Detail, MAX_DIGEST_INTERVAL, MIN_DIGEST_INTERVAL, Preferences, Topic, TopicPreference};
pub use render::{Rendered, render};
pub use service_kit::time::{Clock, ManualClock, SystemClock, Timestamp};
