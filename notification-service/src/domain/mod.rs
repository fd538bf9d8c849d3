//! The pure core of notification-service: preferences, the events it
//! receives, the decision function from (event, preferences, now) to
//! actions, a notification's life from held to delivered or retracted, plus
//! how notifications read. No tonic, prost or sled here.

mod channel;
mod decide;
mod email;
mod event;
mod notification;
mod prefs;
mod render;
mod schedule;
mod status;

pub use channel::{Channel, Channels, EmailAddress, MAX_EMAIL_BYTES, NotAnAddress};
pub use decide::{Action, AtDelivery, Recent, Settings, at_delivery, decide, decide_with};
pub use email::{EmailContent, email};
pub use event::{Event, EventKind, Item};
pub use notification::{Notification, Removal, State, Update, UpdateKind};
pub use prefs::{Delivery, Detail, MAX_DIGEST_INTERVAL, MIN_DIGEST_INTERVAL, Preferences, Topic, TopicPreference};
pub use render::{Rendered, render};
pub use schedule::{LocalTime, QuietHours, Zone};
pub use service_kit::time::{Clock, ManualClock, SystemClock, Timestamp};
pub use status::{ChannelState, DeliveryStatus};
