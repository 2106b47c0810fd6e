//! Console sign-in state: sessions (random id in an HttpOnly cookie, a CSRF token each, idle and
//! absolute expiry) and the per-address limit on failed sign-ins. Time is passed in, so expiry and
//! the limit are tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::Caller;

/// A session unused for this long is gone.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session older than this is gone, however busy: an operator signs in once per shift.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; signing in beyond it drops the least recently used one.
pub const MAX_SESSIONS: usize = 10_000;
/// Failed sign-ins allowed per client address within [`ATTEMPT_WINDOW`]; more are refused unchecked.
pub const MAX_FAILURES: usize = 5;
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered by the limiter at most (the oldest is forgotten first).
const MAX_ADDRESSES: usize = 10_000;

/// 32 random bytes from the OS as 64 hex characters.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for (i, byte) in a.iter().enumerate() {
        diff |= byte ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// A signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub caller: Caller,
    /// Sent with every form and checked on every POST.
    pub csrf: String,
    created: Instant,
    last_used: Instant,
}

impl Session {
    /// The name actions are recorded under.
    pub fn name(&self) -> &str {
        match &self.caller {
            Caller::Operator(name) => name,
            Caller::Admin => crate::api::ADMIN,
        }
    }
}

#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    /// A new session for `caller`; returns its id (the cookie's value).
    pub fn create(&self, caller: Caller, now: Instant) -> String {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| alive(s, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| id.clone())
        {
            map.remove(&oldest);
        }
        let id = random_token();
        map.insert(
            id.clone(),
            Session {
                caller,
                csrf: random_token(),
                created: now,
                last_used: now,
            },
        );
        id
    }

    /// The live session with this id, its idle clock restarted; an expired one is removed.
    pub fn touch(&self, id: &str, now: Instant) -> Option<Session> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let session = map.get_mut(id)?;
        if !alive(session, now) {
            map.remove(id);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Ends a session; returns it, if it was there.
    pub fn remove(&self, id: &str) -> Option<Session> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id)
    }
}

fn alive(session: &Session, now: Instant) -> bool {
    now.saturating_duration_since(session.last_used) < IDLE
        && now.saturating_duration_since(session.created) < ABSOLUTE
}

/// Failed sign-ins per client address in a sliding window.
#[derive(Default)]
pub struct Limiter(Mutex<HashMap<IpAddr, VecDeque<Instant>>>);

impl Limiter {
    /// Whether `address` may try a token now.
    pub fn allows(&self, address: IpAddr, now: Instant) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&address) {
            Some(times) => {
                forget_old(times, now);
                times.len() < MAX_FAILURES
            }
            None => true,
        }
    }

    pub fn failed(&self, address: IpAddr, now: Instant) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&address) {
            map.retain(|_, times| {
                forget_old(times, now);
                !times.is_empty()
            });
            if map.len() >= MAX_ADDRESSES {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, t)| t.back().copied())
                    .map(|(a, _)| *a);
                if let Some(oldest) = oldest {
                    map.remove(&oldest);
                }
            }
        }
        let times = map.entry(address).or_default();
        forget_old(times, now);
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }
}

fn forget_old(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= ATTEMPT_WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_and_at_its_absolute_limit() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let id = sessions.create(Caller::Operator("an".into()), t0);
        let session = sessions.touch(&id, t0 + IDLE / 2).expect("alive");
        assert_eq!(session.name(), "an");
        assert_eq!(session.csrf.len(), 64);
        // Used every 20 minutes, it still ends at the absolute limit.
        let mut now = t0;
        while now + IDLE / 2 < t0 + ABSOLUTE {
            now += IDLE / 2;
            assert!(sessions.touch(&id, now).is_some(), "at {:?}", now - t0);
        }
        assert!(sessions.touch(&id, t0 + ABSOLUTE).is_none());
        // Idle for 30 minutes: gone.
        let id = sessions.create(Caller::Admin, t0);
        assert!(sessions.touch(&id, t0 + IDLE).is_none());
        assert!(
            sessions.touch(&id, t0).is_none(),
            "removed, not only hidden"
        );
        assert!(sessions.touch("unknown", t0).is_none());
    }

    #[test]
    fn ids_and_csrf_tokens_differ_per_session() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let a = sessions.create(Caller::Admin, now);
        let b = sessions.create(Caller::Admin, now);
        assert_ne!(a, b);
        let (sa, sb) = (
            sessions.touch(&a, now).unwrap(),
            sessions.touch(&b, now).unwrap(),
        );
        assert_ne!(sa.csrf, sb.csrf);
        assert!(same_secret(&sa.csrf, &sa.csrf.clone()));
        assert!(!same_secret(&sa.csrf, &sb.csrf));
        assert!(!same_secret(&sa.csrf, ""));
        sessions.remove(&a);
        assert!(sessions.touch(&a, now).is_none());
    }

    #[test]
    fn failed_sign_ins_are_limited_per_address_for_a_minute() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "::1".parse().unwrap());
        for n in 0..MAX_FAILURES {
            assert!(limiter.allows(a, t0), "attempt {n}");
            limiter.failed(a, t0);
        }
        assert!(!limiter.allows(a, t0));
        assert!(!limiter.allows(a, t0 + ATTEMPT_WINDOW / 2));
        assert!(limiter.allows(b, t0), "another address is not held up");
        assert!(limiter.allows(a, t0 + ATTEMPT_WINDOW));
    }
}
