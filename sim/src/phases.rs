//! The phases around a schedule: setting the group up, and letting delivery quiesce.
use kith_core::group::LEAVE_STEP_SECS;

use crate::world::World;

impl World {
    /// Device 0 adds about half of the other devices; everything is delivered in order.
    pub(crate) fn setup(&mut self) {
        let n = self.devices.len();
        for _ in 1..n.div_ceil(2).max(2).min(n) {
            self.act(&crate::Action::Add { by: 0, who: 0 });
        }
        self.drain(0);
        self.quiesce();
    }

    /// Every device online, no crash armed; deliver (and run timers) until nothing is in
    /// flight and no timer is due.
    pub(crate) fn quiesce(&mut self) {
        for d in &mut self.devices {
            d.crash = None;
        }
        for i in 0..self.devices.len() {
            self.set_online(i, true);
        }
        let step = LEAVE_STEP_SECS * (self.devices.len() as u64 + 2);
        for round in 0..200 {
            if self.trace {
                eprintln!("quiesce {round}: {}", self.describe());
                for p in &self.in_flight {
                    eprintln!(
                        "  in flight {:08x} to d{}",
                        crate::world::digest(&p.frame.payload),
                        p.to
                    );
                }
            }
            if !self.in_flight.is_empty() {
                self.drain(round);
                continue;
            }
            if !self.timers_due(self.now + step) {
                return;
            }
            self.advance(step);
        }
        self.record
            .violation("delivery did not quiesce in 200 rounds".to_string());
    }
}

impl World {
    /// One line per holder: epoch, members, admins (for `KITH_SIM_TRACE`).
    pub(crate) fn describe(&self) -> String {
        let mut text = format!("in flight {}", self.in_flight.len());
        for i in 0..self.devices.len() {
            let d = &self.devices[i];
            if !d.holds(&self.group) {
                continue;
            }
            let epoch = d
                .engine
                .epoch(&d.conn, &self.group)
                .map(|e| (e.0, e.1[0]))
                .ok();
            let members: Vec<String> = d
                .engine
                .members(&d.conn, &self.group)
                .map(|m| {
                    m.into_iter()
                        .map(|m| m.address.replace("@sim.example", ""))
                        .collect()
                })
                .unwrap_or_default();
            let admins: Vec<String> = d
                .engine
                .admins(&d.conn, &self.group)
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.replace("@sim.example", ""))
                .collect();
            let online = if d.online { "" } else { " offline" };
            text.push_str(&format!(
                "\n    d{i}{online}: {epoch:?} {members:?} admins {admins:?}"
            ));
        }
        text
    }
}
