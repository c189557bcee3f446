//! Headless Chromium on the demo page of `clarion serve` (written next).
