package dev.cloudauth;

/** The adapters' rule through java.net.http, sendAsync(). */
class HttpClientAsyncAdapterTest extends HttpClientAdapterTest {
    @Override
    boolean async() {
        return true;
    }
}
