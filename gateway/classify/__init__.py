"""From a parsed mail to a Decision: loop guard, threading, lead check, rules."""
