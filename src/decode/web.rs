//! Web server logs: access logs (combined, common, vhost_combined) and apache/nginx error logs.
use super::DecodeContext;
use crate::model::Event;
pub(crate) fn decode<'a>(_line: &'a str, _ctx: &DecodeContext, _product: Option<&'static str>) -> Option<Event<'a>> { None }
