# minik: create-vm
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
    [Console]::OutputEncoding = [System.Text.Encoding]::UTF8
    function Stop-Minik([string]$Id, [System.Management.Automation.ErrorCategory]$Category, [string]$Message, [string]$Target) {
        throw [System.Management.Automation.ErrorRecord]::new([System.Exception]::new($Message), $Id, $Category, $Target)
    }
    if (-not (Get-Module -ListAvailable -Name Hyper-V)) {
        Stop-Minik 'MinikHyperVModuleMissing' NotInstalled 'the Hyper-V PowerShell module is not installed' 'Hyper-V'
    }
    Import-Module Hyper-V
    function Test-MinikLabels([string]$Notes, [string]$Cluster, [string]$Kind) {
        if (-not $Notes) { return $false }
        try { $l = ConvertFrom-Json -InputObject $Notes } catch { return $false }
        return ($l.'dev.minik.cluster' -ceq $Cluster) -and ($l.'dev.minik.kind' -ceq $Kind)
    }
    function Find-MinikVM([string]$Name, [string]$Notes) {
        Hyper-V\Get-VM | Where-Object { $_.Name -eq $Name -and $_.Notes -ceq $Notes } | Select-Object -First 1
    }
    $name = 'dev-m02'
    $notes = '{"dev.minik.cluster":"dev","dev.minik.kind":"node","dev.minik.node":"dev-m02","dev.minik.role":"worker"}'
    $switchName = 'minik-dev'
    $mac = '026D6B9AD5EA'
    $vmDir = ('C:\Users\Zo'+[char]0x00EB+' O''Brien\.minik\profiles\dev\nodes\dev-m02\hyperv')
    $sourceVhd = ('C:\Users\Zo'+[char]0x00EB+' O''Brien\.minik\profiles\dev\nodes\dev-m02\boot.vhd')
    $bootDisk = ('C:\Users\Zo'+[char]0x00EB+' O''Brien\.minik\profiles\dev\nodes\dev-m02\hyperv\boot.vhdx')
    $dataDisk = ('C:\Users\Zo'+[char]0x00EB+' O''Brien\.minik\profiles\dev\nodes\dev-m02\hyperv\data.vhdx')
    $dataBytes = 21474836480
    $memoryBytes = 2147483648
    $cpus = 2
    $comPipe = '\\.\pipe\minik-dev-m02'
    $existing = @(Hyper-V\Get-VM | Where-Object { $_.Name -eq $name })
    $mine = @($existing | Where-Object { $_.Notes -ceq $notes })
    if ($mine.Count -gt 0) {
        $result = @{ name = $mine[0].Name; id = [string]$mine[0].Id; created = $false }
    } elseif ($existing.Count -gt 0) {
        Stop-Minik 'MinikVMNameInUse' ResourceExists ('a VM named ' + $name + ' exists and minik did not make it') $name
    } else {
        if (-not (Hyper-V\Get-VMSwitch | Where-Object { $_.Name -eq $switchName })) {
            Stop-Minik 'MinikSwitchMissing' ObjectNotFound ('there is no virtual switch ' + $switchName) $switchName
        }
        New-Item -ItemType Directory -Force -Path $vmDir | Out-Null
        $vm = $null
        $newData = $false
        try {
            if (Test-Path -LiteralPath $bootDisk) { Remove-Item -LiteralPath $bootDisk -Force }
            Hyper-V\Convert-VHD -Path $sourceVhd -DestinationPath $bootDisk -VHDType Dynamic
            $vm = Hyper-V\New-VM -Name $name -Generation 2 -MemoryStartupBytes $memoryBytes -NoVHD -SwitchName $switchName -Path $vmDir
            Hyper-V\Set-VM -VM $vm -ProcessorCount $cpus -StaticMemory -AutomaticCheckpointsEnabled $false -AutomaticStartAction Nothing -AutomaticStopAction ShutDown -Notes $notes
            Hyper-V\Set-VMFirmware -VM $vm -EnableSecureBoot Off
            $disk = Hyper-V\Add-VMHardDiskDrive -VM $vm -Path $bootDisk -ControllerType SCSI -ControllerNumber 0 -ControllerLocation 0 -Passthru
            Hyper-V\Set-VMFirmware -VM $vm -FirstBootDevice $disk
            if (-not (Test-Path -LiteralPath $dataDisk)) {
                Hyper-V\New-VHD -Path $dataDisk -SizeBytes $dataBytes -Dynamic | Out-Null
                $newData = $true
            }
            Hyper-V\Add-VMHardDiskDrive -VM $vm -Path $dataDisk -ControllerType SCSI -ControllerNumber 0 -ControllerLocation 1
            Hyper-V\Set-VMNetworkAdapter -VM $vm -StaticMacAddress $mac
            Hyper-V\Set-VMComPort -VM $vm -Number 1 -Path $comPipe
        } catch {
            if ($vm) { Hyper-V\Remove-VM -VM $vm -Force }
            if (Test-Path -LiteralPath $bootDisk) { Remove-Item -LiteralPath $bootDisk -Force }
            if ($newData -and (Test-Path -LiteralPath $dataDisk)) { Remove-Item -LiteralPath $dataDisk -Force }
            throw
        }
        Remove-Item -LiteralPath $sourceVhd -Force
        $result = @{ name = $vm.Name; id = [string]$vm.Id; created = $true }
    }
    ConvertTo-Json -Compress -Depth 6 -InputObject @{ result = $result }
} catch {
    $e = $_
    ConvertTo-Json -Compress -Depth 3 -InputObject @{ error = @{
        category = [string]$e.CategoryInfo.Category
        fullyQualifiedErrorId = [string]$e.FullyQualifiedErrorId
        exception = $e.Exception.GetType().FullName
        message = [string]$e.Exception.Message
        target = [string]$e.TargetObject
    } }
}

