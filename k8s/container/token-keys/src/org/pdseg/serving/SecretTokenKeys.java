package org.pdseg.serving;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.Objects;
import java.util.regex.Pattern;
import org.pytorch.serve.servingsdk.ModelServerEndpoint;
import org.pytorch.serve.servingsdk.annotations.Endpoint;
import org.pytorch.serve.servingsdk.annotations.helpers.EndpointTypes;
import org.pytorch.serve.util.TokenAuthorization;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TorchServe token keys from files, e.g. a Kubernetes Secret mounted as a volume.
 *
 * <p>TorchServe 0.12 draws new random keys at every start and has no setting to preset them, so
 * several replicas behind one Service would each want a different key. This plugin, loaded from
 * {@code plugins_path} right after TorchServe has made its keys and before any port opens,
 * replaces the inference and management keys (and the API key, if given) with the contents of
 * the files {@code inference}, {@code management} and {@code api} in the folder named by the
 * environment variable {@code TS_TOKEN_KEYS_DIR}. TorchServe's own token check stays in charge;
 * only the values it compares against come from the Secret.
 *
 * <p>Rotation: the folder is read again every {@code TS_TOKEN_KEYS_RELOAD_S} seconds (default
 * 10); changed files take effect then. The keys also win over {@code POST /token}, which would
 * otherwise give one pod a private random key. Keys from files do not expire: a Secret rotation
 * replaces them. {@code key_file.json} is rewritten with the keys in force, so tools that read it
 * (the probes) keep working.
 *
 * <p>Pinned to TorchServe 0.12.0: it sets private static fields of {@link TokenAuthorization}
 * by reflection. tests/test_token_keys.py fails if a TorchServe upgrade moves them.
 *
 * <p>It serves no URL (endpoint type NONE); TorchServe instantiates it once per endpoint type it
 * scans, the static initializer runs once.
 */
@Endpoint(
        urlPattern = "pd-secret-token-keys",
        endpointType = EndpointTypes.NONE,
        description = "Token keys from a mounted Secret; serves no URL")
public class SecretTokenKeys extends ModelServerEndpoint {
    static final String DIR_VARIABLE = "TS_TOKEN_KEYS_DIR";
    static final String RELOAD_VARIABLE = "TS_TOKEN_KEYS_RELOAD_S";
    // Far enough never to expire, near enough for every date parser (Python's included).
    static final Instant NO_EXPIRY = Instant.parse("9999-12-31T00:00:00Z");
    // TorchServe's own keys are URL-safe base64; a Secret's value should look alike.
    static final Pattern KEY_PATTERN = Pattern.compile("[A-Za-z0-9._~+/=-]{16,512}");
    private static final Logger logger = LoggerFactory.getLogger(SecretTokenKeys.class);

    static {
        install();
    }

    private static void install() {
        String folder = System.getenv(DIR_VARIABLE);
        if (folder == null || folder.isBlank()) {
            logger.info("{} is not set: TorchServe's own per-start token keys are in force", DIR_VARIABLE);
            return;
        }
        Path directory = Paths.get(folder);
        Keys keys = null;
        try {
            keys = Keys.read(directory);
            apply(keys);
            logger.info("Token keys from {} are in force (api key from file: {})", directory, keys.api != null);
        } catch (IOException | RuntimeException | ReflectiveOperationException error) {
            // Serving with keys nobody knows is worse than not starting: stop before any port opens.
            logger.error("Token keys from {} could not be applied: {}", directory, error.toString());
            System.err.println("FATAL: token keys from " + directory + " could not be applied: " + error);
            Runtime.getRuntime().halt(78);
        }
        long reloadSeconds = 10;
        String reload = System.getenv(RELOAD_VARIABLE);
        if (reload != null && !reload.isBlank()) {
            reloadSeconds = Math.max(1, Long.parseLong(reload.trim()));
        }
        Thread watcher = new Thread(new Watcher(directory, reloadSeconds * 1000, keys), "pd-token-keys");
        watcher.setDaemon(true);
        watcher.start();
    }

    /** The keys of one reading of the folder. */
    static final class Keys {
        final String inference;
        final String management;
        final String api; // null: keep TorchServe's

        Keys(String inference, String management, String api) {
            this.inference = inference;
            this.management = management;
            this.api = api;
        }

        static Keys read(Path directory) throws IOException {
            return new Keys(
                    required(directory.resolve("inference")),
                    required(directory.resolve("management")),
                    Files.exists(directory.resolve("api")) ? required(directory.resolve("api")) : null);
        }

        private static String required(Path file) throws IOException {
            String value = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).strip();
            if (!KEY_PATTERN.matcher(value).matches()) {
                throw new IOException(file + ": a key is 16 to 512 characters of [A-Za-z0-9._~+/=-]");
            }
            return value;
        }

        @Override
        public boolean equals(Object other) {
            if (!(other instanceof Keys)) {
                return false;
            }
            Keys keys = (Keys) other;
            return inference.equals(keys.inference)
                    && management.equals(keys.management)
                    && Objects.equals(api, keys.api);
        }

        @Override
        public int hashCode() {
            return Objects.hash(inference, management, api);
        }
    }

    private static Field field(String name) throws NoSuchFieldException {
        Field field = TokenAuthorization.class.getDeclaredField(name);
        field.setAccessible(true);
        return field;
    }

    static synchronized void apply(Keys keys) throws IOException, ReflectiveOperationException {
        field("inferenceKey").set(null, keys.inference);
        field("managementKey").set(null, keys.management);
        field("inferenceExpirationTimeMinutes").set(null, NO_EXPIRY);
        field("managementExpirationTimeMinutes").set(null, NO_EXPIRY);
        if (keys.api != null) {
            field("apiKey").set(null, keys.api);
        }
        writeKeyFile((String) field("keyFilePath").get(null), (String) field("apiKey").get(null), keys);
    }

    /** True when TorchServe holds other keys than ``keys`` (a POST /token replaced one). */
    static boolean drifted(Keys keys) throws ReflectiveOperationException {
        return !keys.inference.equals(field("inferenceKey").get(null))
                || !keys.management.equals(field("managementKey").get(null))
                || (keys.api != null && !keys.api.equals(field("apiKey").get(null)));
    }

    private static void writeKeyFile(String location, String apiKey, Keys keys) throws IOException {
        if (location == null) {
            return;
        }
        String expiry = NO_EXPIRY.toString();
        String json = "{\n"
                + "  \"management\": {\n    \"key\": \"" + keys.management + "\",\n"
                + "    \"expiration time\": \"" + expiry + "\"\n  },\n"
                + "  \"inference\": {\n    \"key\": \"" + keys.inference + "\",\n"
                + "    \"expiration time\": \"" + expiry + "\"\n  },\n"
                + "  \"API\": {\n    \"key\": \"" + apiKey + "\"\n  }\n}\n";
        Path target = Paths.get(location);
        Path partial = target.resolveSibling(target.getFileName() + ".partial");
        Files.write(partial, json.getBytes(StandardCharsets.UTF_8));
        try {
            Files.setPosixFilePermissions(partial, PosixFilePermissions.fromString("rw-------"));
        } catch (UnsupportedOperationException ignored) {
            // not a POSIX file system: leave the defaults
        }
        Files.move(partial, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** Re-reads the folder and puts the keys back in force when they or TorchServe's differ. */
    private static final class Watcher implements Runnable {
        private final Path directory;
        private final long periodMillis;
        private Keys current;

        Watcher(Path directory, long periodMillis, Keys applied) {
            this.directory = directory;
            this.periodMillis = periodMillis;
            this.current = applied;
        }

        @Override
        public void run() {
            while (true) {
                try {
                    Thread.sleep(periodMillis);
                    Keys keys = Keys.read(directory);
                    if (!keys.equals(current) || drifted(keys)) {
                        apply(keys);
                        logger.info("Token keys re-applied from {} ({})", directory,
                                keys.equals(current) ? "a key had been replaced through the API" : "the files changed");
                        current = keys;
                    }
                } catch (InterruptedException stop) {
                    return;
                } catch (IOException | RuntimeException | ReflectiveOperationException error) {
                    // A Secret update is a symlink swap; a half-seen folder is read again next time.
                    logger.warn("Token keys in {} not re-read: {}", directory, error.toString());
                }
            }
        }
    }
}
