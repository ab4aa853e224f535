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
