package dev.cloudauth;

import java.time.Duration;

/** One event of a session ({@code cloudauth_event}). Never holds a secret or a token. */
public final class Event {
    private final EventKind kind;
    private final String reason;
    private final ResultCode result;
    private final int httpStatus;
    private final Duration duration;
    private final String message;

    Event(EventKind kind, String reason, ResultCode result, int httpStatus, Duration duration, String message) {
        this.kind = kind;
        this.reason = reason;
        this.result = result;
        this.httpStatus = httpStatus;
        this.duration = duration;
        this.message = message;
    }

    public EventKind kind() {
        return kind;
    }

    /** Why a token was asked for: "first_use", "refresh_ahead", "expired", "invalidated", "unauthorized", "credentials_changed"; "" otherwise. */
    public String reason() {
        return reason;
    }

    /** OK, or the failure's code. */
    public ResultCode result() {
        return result;
    }

    /** The HTTP status behind the event; 0 without an HTTP answer. */
    public int httpStatus() {
        return httpStatus;
    }

    /** How long the fetch took; for {@link EventKind#RETRY}, the wait before the next attempt. */
    public Duration duration() {
        return duration;
    }

    /** One line for a person; "" when there is nothing to add. */
    public String message() {
        return message;
    }

    @Override
    public String toString() {
        return "Event{" + kind + (reason.isEmpty() ? "" : " " + reason) + ", " + result
                + (httpStatus == 0 ? "" : ", HTTP " + httpStatus) + ", " + duration.toMillis() + " ms"
                + (message.isEmpty() ? "" : ", " + message) + "}";
    }
}
