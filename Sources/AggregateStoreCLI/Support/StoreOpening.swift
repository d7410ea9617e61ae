import AggregateStore
import AggregateStoreEngine
import ArgumentParser
import Logging

/// Opens a data store, turning an open failure into a message and exit status 3 (1 if damaged).
func openDataStoreOrExit(_ path: String, configuration: DataStore.Configuration = DataStore.Configuration(),
                         logger: Logger) throws -> DataStore {
    do {
        return try DataStore.open(at: path, configuration: configuration, logger: logger)
    } catch {
        printError("cannot open \(path): \(error)")
        throw error.code == .corruption ? ExitStatus.damaged : ExitStatus.cannotOpen
    }
}

/// Opens a store read-only (a shared lock), turning an open failure into a message and exit
/// status 3 (1 if damaged): how the commands that only read a store open it.
func openReadOnlyOrExit(_ path: String, logger: Logger) throws -> StorageEngine {
    var configuration = EngineConfiguration()
    configuration.readOnly = true
    return try openOrExit(path, configuration: configuration, logger: logger)
}

/// Opens a store, turning an open failure into a message and exit status 3.
func openOrExit(_ path: String, configuration: EngineConfiguration, logger: Logger) throws -> StorageEngine {
    do {
        return try StorageEngine.open(at: path, configuration: configuration, logger: logger)
    } catch {
        printError("cannot open \(path): \(error)")
        throw error.code == .corruption ? ExitStatus.damaged : ExitStatus.cannotOpen
    }
}

/// Lets compaction drop the events every stored subscriber cursor has passed, as the event
/// engine of a running store does (with no cursor stored, every event is kept).
/// - Returns: The stored cursors, by subscriber name.
@discardableResult
func releaseDeliveredEvents(_ engine: StorageEngine) throws -> [String: UInt64] {
    let cursors = try EventEngine.storedCursors(in: engine)
    if let slowest = cursors.values.min() { engine.releaseEvents(through: slowest) }
    return cursors
}
