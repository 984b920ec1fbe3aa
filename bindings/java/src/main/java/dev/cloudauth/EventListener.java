package dev.cloudauth;

/**
 * Receives a session's events. It runs on the binding's own delivery thread
 * ("cloudauth-delivery"), one event at a time, never on a library thread: return quickly, and
 * do not wait there for an async operation of this binding (its completion comes through the
 * same thread). An exception it throws is caught and dropped.
 */
@FunctionalInterface
public interface EventListener {
    void onEvent(Event event);
}
