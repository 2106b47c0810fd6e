//! JSON lines.
use super::DecodeContext;
use crate::model::Event;
pub(crate) fn decode<'a>(_line: &'a str, _ctx: &DecodeContext) -> Option<Event<'a>> { None }
