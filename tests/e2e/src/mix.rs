//! A conversation mix for fault tests: several Discord users talking with Flex agents at once, user
//! and agent messages interleaved, some users handed off before the mix and some asking for a person in
//! the middle of it. The test drives it in slices (so it can crash or restart something between two
//! slices), then [`Mix::verify`] checks what each side saw: every user message in the agent's view
//! exactly once and in order, every agent message in the user's DM exactly once and in order, one
//! "case created" and one "joined" per conversation.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use serde_json::Value;

use crate::system::{case_number_in, customer_messages, describe_messages, System};

/// The agent's display name in every conversation of a mix.
pub const AGENT_NAME: &str = "Ana";
const AGENT_IDENTITY: &str = "agent_ana";

/// The shape of a mix.
#[derive(Debug, Clone, Copy)]
pub struct MixPlan {
    /// Conversations (one Discord user each).
    pub conversations: usize,
    /// Of which handed off and accepted before the mix starts; the others ask for a person as their
    /// first step of the mix.
    pub handed_off_before: usize,
    /// User messages per conversation (not counting the request for a person).
    pub user_messages: usize,
    /// Agent messages per conversation.
    pub agent_messages: usize,
    /// Pause between two steps.
    pub pace: Duration,
    /// Seed of the interleaving.
    pub seed: u64,
}

impl Default for MixPlan {
    /// 10 conversations × (12 user + 8 agent messages) = 200 messages; 6 handed off before, 4 during.
    fn default() -> Self {
        MixPlan {
            conversations: 10,
            handed_off_before: 6,
            user_messages: 12,
            agent_messages: 8,
            pace: Duration::from_millis(10),
            seed: 0x5eed_f1e7,
        }
    }
}

impl MixPlan {
    /// Messages in the mix (user + agent, the requests for a person not counted).
    pub fn messages(&self) -> usize {
        self.conversations * (self.user_messages + self.agent_messages)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    RequestAgent,
    User(usize),
    Agent(usize),
}

#[derive(Debug)]
struct Conversation {
    name: String,
    user_id: u64,
    case_number: Option<String>,
    conversation_sid: Option<String>,
    accepted: bool,
    deferred: VecDeque<String>,
    user_bodies: Vec<String>,
    agent_bodies: Vec<String>,
}

/// A running mix.
#[derive(Debug)]
pub struct Mix {
    plan: MixPlan,
    convs: Vec<Conversation>,
    schedule: Vec<(usize, Action)>,
    next: usize,
}

/// A small deterministic generator (the interleaving must be reproducible from the seed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n.max(1) as u64) as usize
    }
}

impl Mix {
    /// Creates the users and hands the first `handed_off_before` of them to an agent (accepted), then
    /// builds the interleaved schedule. Nothing of the mix is sent yet.
    pub async fn prepare(sys: &System, plan: MixPlan) -> Result<Mix> {
        let mut convs = Vec::with_capacity(plan.conversations);
        for c in 0..plan.conversations {
            let name = format!("mixer{c}");
            let user = sys.new_user(&name, "en-US")?;
            convs.push(Conversation {
                user_bodies: (0..plan.user_messages)
                    .map(|i| format!("{name} says {i:02}"))
                    .collect(),
                agent_bodies: (0..plan.agent_messages)
                    .map(|j| format!("{name} hears {j:02}"))
                    .collect(),
                name,
                user_id: user.id,
                case_number: None,
                conversation_sid: None,
                accepted: false,
                deferred: VecDeque::new(),
            });
        }
        for conv in convs.iter_mut().take(plan.handed_off_before) {
            let h = sys
                .request_agent(conv.user_id, "I need to talk to a human agent")
                .await?;
            sys.twilio
                .accept_task(&h.task_sid, AGENT_IDENTITY, AGENT_NAME)
                .map_err(|e| anyhow!("accept {}: {e:?}", h.task_sid))?;
            sys.wait_dm_containing(
                conv.user_id,
                &format!("**{AGENT_NAME}** from support joined"),
                Duration::from_secs(60),
            )
            .await?;
            conv.case_number = Some(h.case_number);
            conv.conversation_sid = Some(h.conversation_sid);
            conv.accepted = true;
        }

        // Per conversation: the request (late ones), then user and agent messages in a random order
        // that keeps each side's own order.
        let mut rng = Lcg(plan.seed);
        let mut per_conv: Vec<VecDeque<Action>> = Vec::new();
        for c in 0..plan.conversations {
            let mut seq = VecDeque::new();
            if c >= plan.handed_off_before {
                seq.push_back(Action::RequestAgent);
            }
            let (mut u, mut a) = (0, 0);
            while u < plan.user_messages || a < plan.agent_messages {
                let left_u = plan.user_messages - u;
                let left_a = plan.agent_messages - a;
                if rng.below(left_u + left_a) < left_u {
                    seq.push_back(Action::User(u));
                    u += 1;
                } else {
                    seq.push_back(Action::Agent(a));
                    a += 1;
                }
            }
            per_conv.push(seq);
        }
        let mut schedule = Vec::new();
        loop {
            let open: Vec<usize> = (0..per_conv.len())
                .filter(|&c| !per_conv[c].is_empty())
                .collect();
            if open.is_empty() {
                break;
            }
            let c = open[rng.below(open.len())];
            if let Some(action) = per_conv[c].pop_front() {
                schedule.push((c, action));
            }
        }
        Ok(Mix {
            plan,
            convs,
            schedule,
            next: 0,
        })
    }

    /// Steps in the schedule (messages plus requests for a person).
    pub fn steps(&self) -> usize {
        self.schedule.len()
    }

    /// Steps carried out so far.
    pub fn done(&self) -> usize {
        self.next
    }

    /// Carries out the schedule up to `fraction` (0.0–1.0) of its steps.
    pub async fn run_until(&mut self, sys: &System, fraction: f64) -> Result<()> {
        let end = ((self.schedule.len() as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
        while self.next < end {
            self.poll_handoffs(sys)?;
            let (c, action) = self.schedule[self.next];
            self.step(sys, c, action)?;
            self.next += 1;
            tokio::time::sleep(self.plan.pace).await;
        }
        self.poll_handoffs(sys)?;
        Ok(())
    }

    /// Carries out the rest of the schedule, then waits (up to `timeout`) until every late hand-off has
    /// its Flex task, the agent accepted it and every deferred agent message was sent.
    pub async fn finish(&mut self, sys: &System, timeout: Duration) -> Result<()> {
        self.run_until(sys, 1.0).await?;
        let deadline = Instant::now() + timeout;
        loop {
            self.poll_handoffs(sys)?;
            if self
                .convs
                .iter()
                .all(|c| c.accepted && c.deferred.is_empty())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let missing: Vec<String> = self
                    .convs
                    .iter()
                    .filter(|c| !c.accepted)
                    .map(|c| format!("{} (case {:?})", c.name, c.case_number))
                    .collect();
                return Err(sys.failure(format!(
                    "hand-offs requested during the mix never reached an agent: {missing:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn step(&mut self, sys: &System, c: usize, action: Action) -> Result<()> {
        let conv = &mut self.convs[c];
        match action {
            Action::RequestAgent => {
                sys.send_dm(conv.user_id, "I need to talk to a human agent")?;
            }
            Action::User(i) => {
                sys.send_dm(conv.user_id, &conv.user_bodies[i])?;
            }
            Action::Agent(j) => {
                let body = conv.agent_bodies[j].clone();
                if conv.accepted && conv.deferred.is_empty() {
                    agent_send(sys, conv, &body)?;
                } else {
                    conv.deferred.push_back(body);
                }
            }
        }
        Ok(())
    }

    /// Finds the case and the task of late hand-offs; the agent accepts as soon as the task exists and
    /// sends what was deferred.
    fn poll_handoffs(&mut self, sys: &System) -> Result<()> {
        for conv in self.convs.iter_mut().filter(|c| !c.accepted) {
            if conv.case_number.is_none() {
                conv.case_number = sys
                    .bot_dms(conv.user_id)
                    .iter()
                    .filter(|m| m.content.contains("created"))
                    .find_map(|m| case_number_in(&m.content));
            }
            let Some(case) = conv.case_number.clone() else {
                continue;
            };
            let Some(task) = sys.task_of(conv.user_id, &case) else {
                continue;
            };
            sys.twilio
                .accept_task(&task.task_sid, AGENT_IDENTITY, AGENT_NAME)
                .map_err(|e| anyhow!("accept {}: {e:?}", task.task_sid))?;
            conv.conversation_sid = Some(task.conversation_sid);
            conv.accepted = true;
        }
        for conv in self.convs.iter_mut().filter(|c| c.accepted) {
            while let Some(body) = conv.deferred.pop_front() {
                agent_send(sys, conv, &body)?;
            }
        }
        Ok(())
    }

    /// Waits (up to `timeout`) until both sides saw everything, then checks exactly-once and order; a
    /// second look after a short pause catches a late duplicate.
    pub async fn verify(&self, sys: &System, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let problems = self.problems(sys);
            if problems.is_empty() {
                break;
            }
            // A duplicate or a wrong order never heals: fail at once with the details.
            let fatal: Vec<&String> = problems.iter().filter(|p| p.contains("FATAL")).collect();
            if !fatal.is_empty() || Instant::now() > deadline {
                return Err(sys.failure(format!(
                    "the mix was not delivered exactly once and in order:\n{}",
                    problems.join("\n")
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let problems = self.problems(sys);
        if !problems.is_empty() {
            return Err(sys.failure(format!(
                "a duplicate arrived after everything was delivered:\n{}",
                problems.join("\n")
            )));
        }
        Ok(())
    }

    /// What is still missing (or, marked FATAL, duplicated or out of order), per conversation.
    fn problems(&self, sys: &System) -> Vec<String> {
        let mut out = Vec::new();
        for conv in &self.convs {
            // Flex side.
            match conv
                .conversation_sid
                .as_deref()
                .and_then(|sid| sys.agent_view(sid))
            {
                None => out.push(format!("{}: no Flex conversation yet", conv.name)),
                Some(view) => {
                    let seen: Vec<String> = customer_messages(&view)
                        .iter()
                        .map(|m| m.body.clone().unwrap_or_default())
                        .collect();
                    if let Some(p) = compare(&conv.name, "agent view", &conv.user_bodies, &seen) {
                        out.push(p);
                    }
                }
            }
            // Discord side.
            let dms = sys.bot_dms(conv.user_id);
            let prefix = format!("**{AGENT_NAME}:** ");
            let seen: Vec<String> = dms
                .iter()
                .filter_map(|m| m.content.strip_prefix(&prefix).map(str::to_owned))
                .collect();
            if let Some(p) = compare(&conv.name, "DM", &conv.agent_bodies, &seen) {
                out.push(p);
            }
            for (what, needle) in [
                ("\"case created\"", " created. I'm connecting you"),
                ("\"joined\"", " from support joined the conversation"),
            ] {
                let n = dms.iter().filter(|m| m.content.contains(needle)).count();
                match n {
                    1 => {}
                    0 => out.push(format!("{}: no {what} DM yet", conv.name)),
                    n => out.push(format!(
                        "FATAL {}: {n} {what} DMs:\n{}",
                        conv.name,
                        describe_messages(&dms)
                    )),
                }
            }
        }
        out
    }

    /// Every conversation's case number and Flex conversation (after [`finish`](Self::finish)).
    pub fn handoffs(&self) -> Vec<(u64, String, String)> {
        self.convs
            .iter()
            .filter_map(|c| {
                Some((
                    c.user_id,
                    c.case_number.clone()?,
                    c.conversation_sid.clone()?,
                ))
            })
            .collect()
    }

    /// The agent closes every conversation and each user rates it 4/5: one "closed" DM and one CSAT
    /// prompt per user, each case resolved with its rating.
    pub async fn close_and_rate(&self, sys: &System, timeout: Duration) -> Result<()> {
        for (_, _, sid) in self.handoffs() {
            sys.twilio
                .agent_close(&sid, Some(AGENT_IDENTITY))
                .map_err(|e| anyhow!("close {sid}: {e:?}"))?;
        }
        for (user_id, case, _) in self.handoffs() {
            let custom_id = format!("csat.{case}.4");
            sys.wait_dm(user_id, "the CSAT prompt", timeout, |msgs| {
                msgs.iter()
                    .any(|m| {
                        crate::system::buttons(m)
                            .iter()
                            .any(|(_, id)| *id == custom_id)
                    })
                    .then_some(())
            })
            .await?;
            sys.click(user_id, &custom_id)?;
        }
        for (user_id, case, _) in self.handoffs() {
            sys.wait_case(&case, "resolved with a 4/5 rating", timeout, |c: &Value| {
                c["status"] == "resolved" && c["csat"]["rating"] == 4
            })
            .await?;
            sys.wait_dm_containing(user_id, "Thanks for the 4/5", timeout)
                .await?;
            let dms = sys.bot_dms(user_id);
            for needle in [
                "closed the conversation",
                "How did we do?",
                "Thanks for the 4/5",
            ] {
                let n = dms.iter().filter(|m| m.content.contains(needle)).count();
                if n != 1 {
                    return Err(sys.failure(format!(
                        "{n} DMs containing {needle:?} for case {case}:\n{}",
                        describe_messages(&dms)
                    )));
                }
            }
        }
        Ok(())
    }
}

fn agent_send(sys: &System, conv: &Conversation, body: &str) -> Result<()> {
    let sid = conv
        .conversation_sid
        .as_deref()
        .ok_or_else(|| anyhow!("{} has no Flex conversation", conv.name))?;
    sys.twilio
        .agent_send(sid, AGENT_IDENTITY, body)
        .map_err(|e| anyhow!("agent message in {sid}: {e:?}"))?;
    Ok(())
}

/// `None` when `seen == expected`; else what is wrong (FATAL when it can no longer become right).
fn compare(name: &str, side: &str, expected: &[String], seen: &[String]) -> Option<String> {
    if seen == expected {
        return None;
    }
    let mut dupes: Vec<&String> = Vec::new();
    for (i, s) in seen.iter().enumerate() {
        if seen[..i].contains(s) && !dupes.contains(&s) {
            dupes.push(s);
        }
    }
    let unexpected: Vec<&String> = seen.iter().filter(|s| !expected.contains(s)).collect();
    let in_order = seen.iter().zip(expected).all(|(s, e)| s == e);
    if !dupes.is_empty() || !unexpected.is_empty() || !in_order {
        return Some(format!(
            "FATAL {name} ({side}): duplicates {dupes:?}, unexpected {unexpected:?}, in order: {in_order}\n  expected {expected:?}\n  seen     {seen:?}"
        ));
    }
    Some(format!(
        "{name} ({side}): {} of {} so far, next missing {:?}",
        seen.len(),
        expected.len(),
        expected.get(seen.len())
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn compare_tells_missing_from_fatal() {
        let e = s(&["a", "b", "c"]);
        assert!(compare("n", "x", &e, &s(&["a", "b", "c"])).is_none());
        let p = compare("n", "x", &e, &s(&["a", "b"])).unwrap();
        assert!(!p.contains("FATAL") && p.contains("\"c\""), "{p}");
        assert!(compare("n", "x", &e, &s(&["a", "a"]))
            .unwrap()
            .contains("FATAL"));
        assert!(compare("n", "x", &e, &s(&["b", "a"]))
            .unwrap()
            .contains("FATAL"));
        assert!(compare("n", "x", &e, &s(&["a", "z"]))
            .unwrap()
            .contains("FATAL"));
        assert!(compare("n", "x", &e, &s(&["a", "b", "c", "c"]))
            .unwrap()
            .contains("FATAL"));
    }

    #[test]
    fn plan_counts_200_messages() {
        assert_eq!(MixPlan::default().messages(), 200);
    }
}
