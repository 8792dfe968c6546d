module epoch-store.test/oracle

go 1.26

require github.com/klauspost/compress v1.18.6
