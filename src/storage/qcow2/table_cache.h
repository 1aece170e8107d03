#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

namespace corral::storage::qcow2 {

/// A bounded LRU cache of cluster-sized metadata tables (L2 tables, refcount blocks), keyed by
/// host offset. It only stores; the image decides when and in which order dirty tables are
/// written (refcount blocks before the L2 tables that depend on them).
class TableCache {
public:
    struct Entry {
        uint64_t offset = 0;
        std::vector<uint8_t> data;
        bool dirty = false;
    };

    explicit TableCache(size_t capacity) : m_capacity(capacity < 2 ? 2 : capacity) {}

    /// The cached table at `offset` (now most recently used), or nullptr.
    Entry* find(uint64_t offset) {
        auto it = m_index.find(offset);
        if (it == m_index.end()) return nullptr;
        m_lru.splice(m_lru.begin(), m_lru, it->second);
        return &*it->second;
    }
    bool full() const { return m_lru.size() >= m_capacity; }
    /// The least recently used entry (to write back before evict_lru()).
    Entry* lru() { return m_lru.empty() ? nullptr : &m_lru.back(); }
    void evict_lru() {
        if (m_lru.empty()) return;
        m_index.erase(m_lru.back().offset);
        m_lru.pop_back();
    }
    Entry* insert(uint64_t offset, std::vector<uint8_t> data, bool dirty) {
        erase(offset);
        m_lru.push_front(Entry{offset, std::move(data), dirty});
        m_index[offset] = m_lru.begin();
        return &m_lru.front();
    }
    void erase(uint64_t offset) {
        auto it = m_index.find(offset);
        if (it == m_index.end()) return;
        m_lru.erase(it->second);
        m_index.erase(it);
    }
    void clear() {
        m_lru.clear();
        m_index.clear();
    }
    template <typename F>
    void for_each(F&& f) {
        for (auto& e : m_lru) f(e);
    }

private:
    size_t m_capacity;
    std::list<Entry> m_lru;
    std::unordered_map<uint64_t, std::list<Entry>::iterator> m_index;
};

}  // namespace corral::storage::qcow2
